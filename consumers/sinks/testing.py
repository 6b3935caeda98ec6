"""Test helpers for the store sink: canonical records as the stream workers write them.

For Lintas's own tests and benchmarks, and for checking a deployment by hand: the schemas and
records come from the workers' own functions (:func:`lintas.streams.canonical_schema`,
:func:`lintas.streams.canonical_record`), the topics are real, the sink is a real
``lintas sink`` process when a test kills it.

Usage::

    topics = CanonicalTopics(kafka, registry, prefix="t1.")
    await topics.create([kematian], partitions=3)
    await topics.produce(kematian, [canonical_event(kematian, example_event(kematian))])
    with SinkProcess(sink_env(...), log_path=tmp / "sink.log") as sink:
        ...
        sink.kill()
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from lintas.kafka import KafkaConnection, create_admin, create_producer
from lintas.schemas import EventType, encode, parse_schema
from lintas.schemas.registry import SchemaRegistryClient
from lintas.testing.processes import LintasProcess

__all__ = ["CanonicalTopics", "SinkProcess", "canonical_event", "sink_env", "varied_payload"]


@functools.cache
def _example(event_type_id: str) -> dict[str, Any]:
    from lintas.schemas import example_event

    return example_event(event_type_id)


def varied_payload(event_type: EventType, n: int) -> dict[str, Any]:
    """The catalog's example of ``event_type`` with a subject of its own for each ``n``.

    Citizen events get a distinct NIK of the national structure (district 32.73.01, birth
    date, serial), so that events spread over partitions by key as real traffic does; other
    subjects get ``-<n>`` appended. Nested values are shared between calls: do not mutate.
    """
    payload = dict(_example(event_type.id))
    field = event_type.subject_field
    if event_type.pii_fields.get(field) == "nik":
        day = 1 + n % 28 + (40 if n % 2 else 0)
        month, year = 1 + (n // 28) % 12, (n // 336) % 50 + 50
        payload[field] = f"327301{day:02d}{month:02d}{year:02d}{1 + (n // 16_800) % 9999:04d}"
    else:
        payload[field] = f"{payload[field]}-{n}"
    return payload


def canonical_event(
    event_type: EventType,
    payload: Mapping[str, Any],
    *,
    event_id: str | None = None,
    app: str = "testapp",
    time: dt.datetime | None = None,
    ingest_time: dt.datetime | None = None,
) -> dict[str, Any]:
    """The canonical record a worker writes for ``payload`` (a valid event of the type)."""
    from lintas.streams import Envelope, canonical_record
    from lintas.streams.canonical import Origin

    now = dt.datetime.now(dt.UTC)
    subject = event_type.key_of(payload)
    envelope = Envelope(
        id=event_id or str(uuid.uuid4()),
        source=f"/opd/{event_type.opd}/{app}",
        type=event_type.id,
        time=time or now,
        subject=subject,
        opd=event_type.opd,
        app=app,
    )
    origin = Origin(topic=event_type.topic, partition=0, offset=0, timestamp_ms=None)
    return canonical_record(
        event_type,
        envelope,
        payload,
        origin=origin,
        key=subject.encode(),
        ingest_time=ingest_time or now,
    )


class CanonicalTopics:
    """Canonical topics of one test: created, their schemas registered, records produced.

    Args:
        kafka: the broker.
        registry: the schema registry the sink reads.
        prefix: the topics' prefix (``LINTAS_STREAMS__TOPIC_PREFIX`` of the sink).
    """

    def __init__(self, kafka: KafkaConnection, registry: SchemaRegistryClient, prefix: str):
        self.kafka = kafka
        self.registry = registry
        self.prefix = prefix
        self.created: list[str] = []
        self._schemas: dict[str, tuple[int, dict[str, Any]]] = {}
        self._producer: Any = None

    def topic(self, event_type: EventType) -> str:
        return f"{self.prefix}{event_type.canonical_topic}"

    async def create(self, event_types: Iterable[EventType], *, partitions: int = 3) -> None:
        """Create the canonical topics of ``event_types``."""
        await self.create_named([self.topic(t) for t in event_types], partitions=partitions)

    async def create_named(self, names: Iterable[str], *, partitions: int = 1) -> None:
        """Create topics by name (the dead-letter topic under the prefix, say)."""
        from aiokafka.admin import NewTopic

        names = list(names)
        admin = create_admin(self.kafka)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
        finally:
            await admin.close()
        self.created += names

    async def register(self, event_type: EventType, schema: Mapping[str, Any] | None = None) -> int:
        """Register the canonical schema of ``event_type`` (or ``schema``); its id."""
        from lintas.streams import canonical_schema

        schema = schema if schema is not None else canonical_schema(event_type)
        text = orjson.dumps(schema).decode()
        schema_id = await self.registry.register(f"{self.topic(event_type)}-value", text)
        self._schemas[event_type.id] = (schema_id, parse_schema(schema))
        return schema_id

    async def produce(
        self,
        event_type: EventType,
        records: Iterable[Mapping[str, Any]],
        *,
        schema: Mapping[str, Any] | None = None,
        wait: bool = True,
    ) -> int:
        """Send canonical records (keyed by subject), written with ``schema`` if given.

        Args:
            wait: wait for the broker's acknowledgements; otherwise the records are only
                queued in the producer (a paced load generator).
        """
        if schema is not None or event_type.id not in self._schemas:
            await self.register(event_type, schema)
        schema_id, parsed = self._schemas[event_type.id]
        if self._producer is None:
            self._producer = create_producer(self.kafka, linger_ms=5)
            await self._producer.start()
        topic = self.topic(event_type)
        futures = []
        for record in records:
            key = (record.get("subject") or "").encode() or None
            value = encode(schema_id, parsed, record)
            futures.append(await self._producer.send(topic, value=value, key=key))
        if wait:
            for future in futures:
                await future
        return len(futures)

    async def send_raw(
        self, event_type: EventType, value: bytes, *, key: bytes | None = None
    ) -> None:
        """Send bytes as they are (a poison record)."""
        if self._producer is None:
            self._producer = create_producer(self.kafka)
            await self._producer.start()
        await self._producer.send_and_wait(self.topic(event_type), value=value, key=key)

    async def close(self, *, delete: bool = True) -> None:
        """Stop the producer and delete the topics created."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        if delete and self.created:
            admin = create_admin(self.kafka)
            await admin.start()
            try:
                await admin.delete_topics(self.created)
            finally:
                await admin.close()
            self.created = []


def sink_env(
    *,
    kafka: KafkaConnection,
    registry_url: str,
    pg_dsn: str,
    group_id: str,
    topic_prefix: str,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a test sink: this process's, with the addresses and names given."""
    env = dict(os.environ)
    env.update(
        {
            "LINTAS_KAFKA_BOOTSTRAP": kafka.bootstrap,
            "LINTAS_KAFKA__USERNAME": kafka.username,
            "LINTAS_KAFKA__PASSWORD": kafka.password,
            "LINTAS_KAFKA__SASL_MECHANISM": kafka.sasl_mechanism,
            "LINTAS_KAFKA__SECURITY_PROTOCOL": kafka.security_protocol,
            "LINTAS_REGISTRY_URL": registry_url,
            "LINTAS_PG_DSN": pg_dsn,
            "LINTAS_SINK__GROUP_ID": group_id,
            "LINTAS_STREAMS__TOPIC_PREFIX": topic_prefix,
            "LINTAS_SINK__TOPIC_REFRESH_S": "2",
        }
    )
    env.pop("LINTAS_KAFKA__PASSWORD_FILE", None)  # the password above wins
    env.update(extra or {})
    return env


class SinkProcess(LintasProcess):
    """A ``lintas sink`` process (see :func:`sink_env` for its environment).

    Args:
        env: its environment.
        log_path: where its output goes (appended, so restarts share one log).
    """

    def __init__(self, env: Mapping[str, str], *, log_path: Path) -> None:
        super().__init__(["sink"], env, log_path=log_path)

"""Helpers of the webhook and subscriber SDK tests: subscribers with fresh delivery topics,
routed records produced as the routing stage writes them, dead letters read back."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lintas.consumers._dlq import dlq_topic, header_text
from lintas.consumers.webhooks import read_dead_letters
from lintas.consumers.webhooks.testing import (
    delivery_headers,
    delivery_value,
    register_projection,
)
from lintas.directory import Directory
from lintas.kafka import KafkaConnection, create_admin, create_producer
from lintas.schemas import EventType, example_event, load_catalog
from lintas.schemas.registry import SchemaRegistryClient
from lintas.settings import Settings

KEMATIAN = load_catalog().get("dukcapil.kematian_dicatat.v1")
IZIN = load_catalog().get("dpmptsp.izin_terbit.v1")


@dataclass(frozen=True)
class Routed:
    """One event as produced to a delivery topic."""

    event_id: str
    key: str
    record: dict[str, Any]


@dataclass
class DeliveryEnv:
    """What a delivery test needs: the directory, the registry, Kafka, and cleanup."""

    directory: Directory
    registry: SchemaRegistryClient
    kafka: KafkaConnection
    topic_factory: Callable[..., Any]
    directory_topic: str
    extra_topics: list[str] = field(default_factory=list)
    _opds: set[str] = field(default_factory=set)

    async def subscriber(
        self, prefix: str, *, url: str | None = None, app_id: str | None = None
    ) -> tuple[str, str | None]:
        """A new subscriber with its own delivery topic: (name, signing secret or None)."""
        topic: str = await self.topic_factory(f"lintas.deliver.{prefix}-", partitions=3)
        name = topic.removeprefix("lintas.deliver.")
        self.extra_topics.append(dlq_topic(name))
        if "dinsos" not in self._opds:
            await self.directory.add_opd({"code": "dinsos", "name": "Dinas Sosial"})
            self._opds.add("dinsos")
        entry: dict[str, Any] = {"name": name, "opd": "dinsos", "app_id": app_id}
        entry |= {"mode": "webhook", "webhook_url": url} if url else {"mode": "kafka"}
        _, secret = await self.directory.add_subscriber(entry)
        return name, secret

    async def produce(
        self,
        subscriber: str,
        count: int,
        *,
        keys: int | None = None,
        event_type: EventType = KEMATIAN,
        fields: Sequence[str] = ("*",),
    ) -> list[Routed]:
        """``count`` routed events of ``event_type`` over ``keys`` distinct NIKs, in order."""
        topic = f"lintas.deliver.{subscriber}"
        schema_id, parsed = await register_projection(self.registry, topic, event_type, fields)
        base = example_event(event_type)
        producer = create_producer(self.kafka, linger_ms=5)
        await producer.start()
        routed = []
        try:
            futures = []
            for i in range(count):
                nik = f"3273{(i % (keys or count)):012d}"
                record = {**base, **({"nik": nik} if "nik" in base else {})}
                event_id = str(uuid.uuid4())
                futures.append(
                    await producer.send(
                        topic,
                        key=nik.encode(),
                        value=delivery_value(schema_id, parsed, record),
                        headers=delivery_headers(event_id, event_type, subject=nik),
                    )
                )
                routed.append(Routed(event_id, nik, record))
            await asyncio.gather(*futures)
        finally:
            await producer.stop()
        return routed

    async def dead_letters(self, subscriber: str) -> dict[str, dict[str, str | None]]:
        """The subscriber's dead letters by event id, with their ``lintas.dlq.*`` headers."""
        out = {}
        for record in await read_dead_letters(self.kafka, subscriber):
            headers = list(record.headers or ())
            event_id = header_text(headers, "ce_id") or "?"
            out[event_id] = {
                name: header_text(headers, f"lintas.dlq.{name}")
                for name in ("reason", "message", "attempts", "status", "subscriber")
            }
        return out

    async def wait_dead_letters(
        self, subscriber: str, ids: set[str], *, timeout: float
    ) -> dict[str, dict[str, str | None]]:
        deadline = time.monotonic() + timeout
        while True:
            letters = await self.dead_letters(subscriber)
            if ids <= letters.keys():
                return letters
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(ids - letters.keys())} of {len(ids)} not dead-lettered")
            await asyncio.sleep(0.5)

    async def cleanup(self) -> None:
        admin = create_admin(self.kafka)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            doomed = [t for t in self.extra_topics if t in existing]
            if doomed:
                await admin.delete_topics(doomed)
        finally:
            await admin.close()


async def wait_for(predicate: Callable[[], Any], *, timeout: float, what: str) -> Any:
    """Poll an async predicate until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        await asyncio.sleep(0.2)


@asynccontextmanager
async def delivery_env(
    fresh_db: str,
    tmp_path: Path,
    kafka_conn: KafkaConnection,
    registry_url: str,
    topic_factory: Callable[..., Any],
) -> AsyncIterator[DeliveryEnv]:
    """A DeliveryEnv on this test's database, with a directory topic of its own."""
    directory_topic: str = await topic_factory(
        "test.directory.", partitions=1, **{"cleanup.policy": "compact"}
    )
    settings = Settings(pg_dsn=fresh_db, data_dir=tmp_path, registry_url=registry_url)
    directory = await Directory.open(
        settings, pg_dsn=fresh_db, kafka=kafka_conn, topic=directory_topic
    )
    registry = SchemaRegistryClient(registry_url)
    delivery = DeliveryEnv(directory, registry, kafka_conn, topic_factory, directory_topic)
    try:
        yield delivery
    finally:
        await delivery.cleanup()
        await registry.aclose()
        await directory.close()

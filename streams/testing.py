"""Test helpers for the stream workers: OPD records, worker processes, reading topics.

For Lintas's own integration tests and for anyone checking a deployment by hand: the records
are what the producer SDK writes (CloudEvents headers, Confluent-framed Avro), the workers are
real ``lintas worker`` processes, and topics are read from the real broker.

Usage::

    record = await opd_record(serializer, kematian, example_event(kematian))
    with WorkerProcess(env, log_path=tmp / "w1.log") as worker:
        ...
        worker.kill()                         # SIGKILL, as a crash would
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lintas.kafka import KafkaConnection, create_admin, create_consumer, create_producer
from lintas.schemas import AvroSerializer, EventType
from lintas.testing.processes import LintasProcess

from ._kafka import partition_ids
from .naming import StreamTopics

__all__ = [
    "OpdRecord",
    "StreamsNamespace",
    "TopicCollector",
    "TopicRecord",
    "WorkerProcess",
    "cloudevent_headers",
    "create_topics",
    "delete_namespace",
    "group_lag",
    "group_members",
    "opd_record",
    "produce",
    "read_topic",
    "varied_event",
    "worker_env",
]


def cloudevent_headers(
    event_type: EventType,
    *,
    event_id: str | None = None,
    app: str = "testapp",
    time: dt.datetime | None = None,
    subject: str | None = None,
) -> list[tuple[str, bytes]]:
    """CloudEvents 1.0 binary-mode headers as the producer SDK writes them."""
    when = (time or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", (event_id or str(uuid.uuid4())).encode()),
        ("ce_source", f"/opd/{event_type.opd}/{app}".encode()),
        ("ce_type", event_type.id.encode()),
        ("ce_time", when.isoformat(timespec="milliseconds").replace("+00:00", "Z").encode()),
    ]
    if subject is not None:
        headers.append(("ce_subject", subject.encode()))
    headers.append(("content-type", b"application/avro"))
    return headers


@dataclass(frozen=True, kw_only=True)
class OpdRecord:
    """A record for an OPD topic, and the event id it carries."""

    event_id: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


async def opd_record(
    serializer: AvroSerializer,
    event_type: EventType,
    record: Mapping[str, Any],
    *,
    event_id: str | None = None,
) -> OpdRecord:
    """An OPD record of ``event_type``: Avro value, key = subject, CloudEvents headers."""
    event_id = event_id or str(uuid.uuid4())
    key = event_type.key_of(record)
    return OpdRecord(
        event_id=event_id,
        key=key.encode(),
        value=await serializer.serialize(event_type, record),
        headers=cloudevent_headers(event_type, event_id=event_id, subject=key),
    )


@dataclass(frozen=True, kw_only=True)
class TopicRecord:
    """A record read back from a topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    def header(self, name: str) -> str | None:
        for key, value in reversed(self.headers):
            if key == name:
                return value.decode()
        return None


async def read_topic(
    conn: KafkaConnection,
    topic: str,
    *,
    until: Callable[[list[TopicRecord]], bool] | None = None,
    timeout: float = 60.0,
    idle: float = 1.0,
) -> list[TopicRecord]:
    """Every record of ``topic`` from the beginning, without a consumer group.

    Args:
        until: read on (waiting for more) until this is true of what was read; without it,
            read what is there now.
        timeout: give up waiting after this many seconds and return what was read.
        idle: poll interval, in seconds.
    """
    consumer = create_consumer(conn, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    out: list[TopicRecord] = []
    try:
        from aiokafka import TopicPartition

        deadline = asyncio.get_running_loop().time() + timeout
        partitions = await partition_ids(conn, topic, wait_s=0 if until is None else timeout)
        if not partitions:
            return out  # the topic does not exist (yet)
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while True:
            ends = await consumer.end_offsets(tps)
            batch = await consumer.getmany(*tps, timeout_ms=int(idle * 1000))
            for records in batch.values():
                out += [
                    TopicRecord(
                        topic=r.topic,
                        partition=r.partition,
                        offset=r.offset,
                        key=r.key,
                        value=r.value,
                        headers=list(r.headers or ()),
                    )
                    for r in records
                ]
            caught_up = all([await consumer.position(tp) >= ends[tp] for tp in tps])
            if until is None and caught_up:
                return out
            if until is not None and until(out):
                return out
            if asyncio.get_running_loop().time() > deadline:
                return out
    finally:
        await consumer.stop()


def worker_env(
    *,
    app_id: str,
    topic_prefix: str,
    partitions: int,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a test worker: this process's ``LINTAS_*`` plus its own names."""
    env = dict(os.environ)
    env.update(
        {
            "LINTAS_STREAMS__APP_ID": app_id,
            "LINTAS_STREAMS__TOPIC_PREFIX": topic_prefix,
            "LINTAS_KAFKA__PARTITIONS": str(partitions),
            "LINTAS_STREAMS__SESSION_TIMEOUT_S": "10",
            "LINTAS_STREAMS__TOPIC_REFRESH_S": "2",
        }
    )
    env.update(extra or {})
    return env


class WorkerProcess(LintasProcess):
    """A ``lintas worker`` process (see :func:`worker_env` for its environment).

    Args:
        env: its environment.
        log_path: where its output goes (appended, so restarts share one log).
    """

    def __init__(self, env: Mapping[str, str], *, log_path: Path) -> None:
        super().__init__(["worker"], env, log_path=log_path)


@dataclass(frozen=True, kw_only=True)
class StreamsNamespace:
    """A prefix, consumer group and partition count of their own for one test's workers."""

    prefix: str
    app_id: str
    partitions: int

    @classmethod
    def fresh(cls, *, partitions: int = 3, label: str = "t") -> StreamsNamespace:
        tag = uuid.uuid4().hex[:8]
        return cls(prefix=f"{label}{tag}.", app_id=f"{label}{tag}-streams", partitions=partitions)

    @property
    def names(self) -> StreamTopics:
        return StreamTopics(self.prefix)

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return worker_env(
            app_id=self.app_id, topic_prefix=self.prefix, partitions=self.partitions, extra=extra
        )


async def create_topics(conn: KafkaConnection, names: list[str], *, partitions: int) -> None:
    """Create topics (and wait until the broker shows them)."""
    from lintas.topics import Action, TopicChange, TopicSpec, apply_plan

    admin = create_admin(conn)
    await admin.start()
    try:
        plan = [
            TopicChange(
                action=Action.CREATE,
                spec=TopicSpec(name=name, partitions=partitions, replication_factor=1),
            )
            for name in names
        ]
        await apply_plan(admin, plan)
    finally:
        await admin.close()


async def delete_namespace(conn: KafkaConnection, ns: StreamsNamespace, registry_url: str) -> None:
    """Delete a namespace's topics, its dedup changelog and its registry subjects."""
    from lintas.schemas.registry import SchemaRegistryClient

    admin = create_admin(conn)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith((ns.prefix, ns.app_id))]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()
    async with SchemaRegistryClient(registry_url) as registry:
        for subject in await registry.get_subjects():
            if subject.startswith(ns.prefix):
                await registry.delete_subject(subject)
                await registry.delete_subject(subject, permanent=True)


async def produce(
    conn: KafkaConnection, topic: str, records: Sequence[OpdRecord], *, chunk: int = 1000
) -> None:
    """Produce records (acks=all, idempotent) and wait until all are acknowledged."""
    producer = create_producer(conn, linger_ms=5, max_request_size=2 * 1024 * 1024)
    await producer.start()
    try:
        for start in range(0, len(records), chunk):
            futures = [
                await producer.send(topic, key=r.key, value=r.value, headers=r.headers)
                for r in records[start : start + chunk]
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


class TopicCollector:
    """Reads a topic in the background from the beginning and keeps every record by ``ce_id``.

    Usage::

        async with TopicCollector(conn, topic) as seen:
            await seen.wait_for(lambda c: c.count >= 100, timeout=60)
    """

    def __init__(self, conn: KafkaConnection, topic: str) -> None:
        self._conn = conn
        self.topic = topic
        self.records: list[TopicRecord] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def count(self) -> int:
        return len(self.records)

    def ids(self) -> list[str]:
        """The ``ce_id`` of every record, repeats included."""
        return [r.header("ce_id") or "" for r in self.records]

    async def __aenter__(self) -> TopicCollector:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        from aiokafka import TopicPartition

        consumer = create_consumer(self._conn, enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = await partition_ids(self._conn, self.topic, wait_s=3600)
            tps = [TopicPartition(self.topic, p) for p in partitions]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while True:
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    self.records += [
                        TopicRecord(
                            topic=r.topic,
                            partition=r.partition,
                            offset=r.offset,
                            key=r.key,
                            value=r.value,
                            headers=list(r.headers or ()),
                        )
                        for r in records
                    ]
        finally:
            await consumer.stop()

    async def wait_for(
        self, condition: Callable[[TopicCollector], bool], *, timeout: float
    ) -> bool:
        """Wait until ``condition(self)`` holds; False when ``timeout`` seconds pass first."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition(self):
            if self._task is not None and self._task.done():
                self._task.result()  # surfaces the consumer's error
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.2)
        return True


async def group_members(conn: KafkaConnection, group_id: str) -> int:
    """How many members the consumer group has now."""
    from aiokafka.errors import GroupCoordinatorNotAvailableError

    admin = create_admin(conn)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group_id])
        groups = response.to_object()["groups"]
        return len(groups[0]["members"]) if groups else 0
    except GroupCoordinatorNotAvailableError:
        # A fresh broker creates __consumer_offsets on the first group's request: until
        # then the group has no coordinator, and so no members yet.
        return 0
    finally:
        await admin.close()


async def group_lag(conn: KafkaConnection, group_id: str, topics: Sequence[str]) -> int:
    """Records of ``topics`` not yet committed by the group (0 when it is caught up)."""
    from aiokafka import TopicPartition

    admin = create_admin(conn)
    consumer = create_consumer(conn)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group_id)
        tps = [
            TopicPartition(topic, p)
            for topic in topics
            for p in await partition_ids(conn, topic, wait_s=30)
        ]
        if len({tp.topic for tp in tps}) < len(set(topics)):
            raise LookupError(f"some of {list(topics)} do not exist")
        ends = await consumer.end_offsets(tps)
        done = {tp: meta.offset for tp, meta in committed.items()}
        return sum(max(ends[tp] - max(done.get(tp, 0), 0), 0) for tp in tps)
    finally:
        await consumer.stop()
        await admin.close()


def varied_event(event_type: EventType, index: int) -> dict[str, Any]:
    """The catalog example of ``event_type`` with a subject of its own per ``index``.

    A NIK subject keeps its region and birth date and gets serial ``index`` (still a valid
    NIK); any other subject gets ``-<index>`` appended. Distinct keys spread records over
    partitions as real traffic does.
    """
    from lintas.schemas import example_event

    record = example_event(event_type)
    field_name = event_type.subject_field
    value = str(record[field_name])
    if event_type.pii_fields.get(field_name) == "nik":
        record[field_name] = value[:12] + f"{index % 9999 + 1:04d}"
    else:
        record[field_name] = f"{value}-{index}"
    return record

"""Watching platform topics from the demo: what lands in the DLQ, what reaches a subscriber.

:class:`TopicTail` reads the records appended to some topics after it started, without a
consumer group (it commits nothing and disturbs no one), and hands each to its listeners:
the dead-letter counter, and the story's waits for one event on a subscriber's topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from lintas.kafka import KafkaConnection, create_admin, create_consumer

__all__ = ["DeadLetterCounter", "TailRecord", "TopicTail", "header"]

log = logging.getLogger(__name__)

REASON_HEADER = "lintas.dlq.reason"
_POLL_MS = 500
# Metadata and offset requests of a reachable broker take milliseconds; a dead one must not
# hang the demo's start.
_CALL_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class TailRecord:
    """One record read by a :class:`TopicTail` (the parts the demo looks at)."""

    topic: str
    key: bytes | None
    headers: Sequence[tuple[str, bytes]]
    read_at: float
    """When the demo read it (``time.monotonic()``)."""


def header(record: TailRecord, name: str) -> str | None:
    """A header's value as text (the first one of that name)."""
    for key, value in record.headers:
        if key == name:
            return value.decode("utf-8", errors="replace")
    return None


Listener = Callable[[TailRecord], None]


class TopicTail:
    """Follows ``topics`` from their current ends.

    Args:
        connection: Kafka's address and credential.
        topics: the topics to follow (each must exist).
    """

    def __init__(self, connection: KafkaConnection, topics: Collection[str]) -> None:
        self._connection = connection
        self.topics = tuple(topics)
        self._listeners: list[Listener] = []
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None
        self.error: str | None = None
        self.missing: tuple[str, ...] = ()

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def wait_for(self, match: Callable[[TailRecord], bool], *, timeout: float) -> TailRecord:
        """The first record from now on that ``match`` accepts.

        Raises:
            TimeoutError: none within ``timeout`` seconds.
        """
        found: asyncio.Future[TailRecord] = asyncio.get_running_loop().create_future()

        def check(record: TailRecord) -> None:
            if not found.done() and match(record):
                found.set_result(record)

        self._listeners.append(check)
        try:
            return await asyncio.wait_for(found, timeout)
        finally:
            self._listeners.remove(check)

    async def start(self) -> None:
        """Assign every partition of the topics at its end offset, then read in the background.

        Topics that do not exist are left out (:attr:`missing` names them).
        """
        partitions = await _partitions(self._connection, self.topics)
        self.missing = tuple(t for t in self.topics if t not in {tp.topic for tp in partitions})
        consumer = create_consumer(self._connection.with_client_id("lintas-demo"), group_id=None)
        await asyncio.wait_for(consumer.start(), _CALL_TIMEOUT_S)
        self._consumer = consumer
        consumer.assign(partitions)
        if partitions:
            ends = await asyncio.wait_for(consumer.end_offsets(partitions), _CALL_TIMEOUT_S)
            for tp, offset in ends.items():
                consumer.seek(tp, offset)
        self._task = asyncio.create_task(self._run(), name="demo-topic-tail")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=_POLL_MS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a broker hiccup must not end the demo's watching
                self.error = str(exc)
                log.warning("reading %s failed: %s", ", ".join(self.topics), exc)
                await asyncio.sleep(1)
                continue
            self.error = None
            now = time.monotonic()
            for records in batches.values():
                for r in records:
                    record = TailRecord(r.topic, r.key, tuple(r.headers), now)
                    for listener in list(self._listeners):
                        listener(record)


async def _partitions(connection: KafkaConnection, topics: Sequence[str]) -> list[Any]:
    """Every partition of the topics that exist."""
    from aiokafka.structs import TopicPartition

    admin = create_admin(connection)
    await asyncio.wait_for(admin.start(), _CALL_TIMEOUT_S)
    try:
        described = await asyncio.wait_for(admin.describe_topics(list(topics)), _CALL_TIMEOUT_S)
    finally:
        await admin.close()
    return [
        TopicPartition(t["topic"], p["partition"])
        for t in described
        if t["error_code"] == 0
        for p in t["partitions"]
    ]


@dataclass(slots=True)
class DeadLetterCounter:
    """Counts dead letters by reason: the demo's own (by ``ce_source``) and the others.

    Args:
        topic: the dead-letter topic.
        sources: the demo applications' CloudEvents sources.
    """

    topic: str
    sources: frozenset[str]
    by_reason: Counter[str] = field(default_factory=Counter)
    others: int = 0

    def __call__(self, record: TailRecord) -> None:
        if record.topic != self.topic:
            return
        if header(record, "ce_source") in self.sources:
            self.by_reason[header(record, REASON_HEADER) or "unknown"] += 1
        else:
            self.others += 1

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())

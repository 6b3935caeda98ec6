"""Follow a topic from a point in time: the dashboard's window on ``lintas.metrics`` and
``lintas.dlq``.

A :class:`TopicFollower` reads every partition of one topic with a group-less consumer (it
commits nothing: each portal instance keeps its own window in memory), starting at the first
record of the last ``horizon``, and hands each record to a callback. It waits for the topic
when it does not exist yet and reconnects after broker failures, so a portal started before
the stream workers fills in once they run.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from lintas.kafka import KafkaConnection, create_admin, create_consumer

__all__ = ["TopicFollower"]

log = logging.getLogger(__name__)

_RETRY_S = 5.0


class TopicFollower:
    """Feeds every record of ``topic`` since ``now - horizon`` to ``handle``, then follows.

    Args:
        conn: how to reach Kafka.
        topic: the topic to follow.
        horizon: how far back to start.
        handle: called with each aiokafka ``ConsumerRecord``; must not raise (errors are
            logged and the record skipped, so one bad record cannot stop the window).
    """

    def __init__(
        self,
        conn: KafkaConnection,
        topic: str,
        *,
        horizon: dt.timedelta,
        handle: Callable[[Any], None],
    ) -> None:
        self._conn = conn.with_client_id(f"lintas-portal-{topic}")
        self.topic = topic
        self._horizon = horizon
        self._handle = handle
        self._task: asyncio.Task[None] | None = None
        self.caught_up = asyncio.Event()
        """Set once every record that existed at start has been handled."""
        self.records = 0
        self.last_error: str | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"follow {self.topic}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker down, topic missing: wait and start again
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.info("following %s failed, retrying: %s", self.topic, self.last_error)
                await asyncio.sleep(_RETRY_S)

    async def _partitions(self) -> list[Any]:
        from aiokafka.structs import TopicPartition

        admin = create_admin(self._conn)
        await admin.start()
        try:
            described = await admin.describe_topics([self.topic])
        finally:
            await admin.close()
        found = [
            TopicPartition(t["topic"], p["partition"])
            for t in described
            if t["error_code"] == 0
            for p in t["partitions"]
        ]
        if not found:
            raise LookupError(f"topic {self.topic} does not exist yet")
        return found

    async def _follow(self) -> None:
        partitions = await self._partitions()
        consumer = create_consumer(self._conn, group_id=None)
        await consumer.start()
        try:
            consumer.assign(partitions)
            since_ms = int((time.time() - self._horizon.total_seconds()) * 1000)
            starts = await consumer.offsets_for_times({tp: since_ms for tp in partitions})
            ends = await consumer.end_offsets(partitions)
            for tp in partitions:
                found = starts.get(tp)
                if found is None:  # nothing that recent: start at the end
                    consumer.seek(tp, ends[tp])
                else:
                    consumer.seek(tp, found.offset)
            pending = {tp: ends[tp] for tp in partitions}
            self.last_error = None
            while True:
                batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
                for records in batch.values():
                    for record in records:
                        self._safe_handle(record)
                if not self.caught_up.is_set():
                    positions = {tp: await consumer.position(tp) for tp in partitions}
                    if all(positions[tp] >= end for tp, end in pending.items()):
                        self.caught_up.set()
        finally:
            await consumer.stop()

    def _safe_handle(self, record: Any) -> None:
        self.records += 1
        try:
            self._handle(record)
        except Exception:  # a malformed record is skipped, never fatal
            log.warning(
                "skipped a record of %s at %s/%s",
                self.topic,
                record.partition,
                record.offset,
                exc_info=True,
            )

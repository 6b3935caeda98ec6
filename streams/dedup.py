"""Stage 4: the same event twice becomes one canonical event.

An event is identified by ``ce_source`` + ``ce_id`` (CloudEvents: unique per source). Its key
and the time it was first accepted live in a faust table whose changelog topic is
co-partitioned with the OPD topics: the key is written to the changelog partition of the
event's own partition, so the worker that gets a partition after a rebalance or restart
recovers exactly the ids it needs before it processes anything.

Keys older than the horizon (``LINTAS_STREAMS__DEDUP_HORIZON_DAYS``, 7 by default) are
ignored, dropped from memory by :meth:`DedupIndex.expire`, and dropped from the changelog by
its retention (``cleanup.policy=compact,delete``), so the table holds about a horizon of ids.

A key is remembered only after its canonical record was acknowledged by the broker: a crash in
between can produce a duplicate (the store removes it by event id) but never a loss. Dead
letters are remembered too, by where they were read (``@<topic>:<partition>:<offset>``), so a
record processed again after a crash is not dead-lettered twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

import orjson

__all__ = ["ChangelogSink", "ChangelogWriter", "DedupIndex", "changelog_topic_configs"]

log = logging.getLogger(__name__)


class ChangelogSink(Protocol):
    """Where :class:`DedupIndex` writes its changelog entries."""

    def write(self, partition: int, key: str, first_seen_ms: int) -> asyncio.Future[None]:
        """Queue one entry for the changelog partition ``partition``; the future is done
        once it is written (or failed to be: a lost entry only costs a duplicate)."""
        ...


class ChangelogWriter:
    """Writes dedup entries to the changelog topic as one record batch per partition.

    An entry per accepted event would cost a producer ``send`` each (a future, a
    partitioner call); batched, the changelog costs little next to the canonical record.
    Entries wait for the next :meth:`flush` (the worker runs one every 50 ms) or until
    ``max_pending`` are queued. All entries of one flush share the future :meth:`write`
    returns.

    Args:
        producer: returns the started aiokafka producer to write with.
        topic: the changelog topic.
        max_pending: entries that trigger a flush without waiting for the timer.
    """

    def __init__(
        self,
        producer: Callable[[], Awaitable[Any]],
        topic: str,
        *,
        max_pending: int = 2000,
    ) -> None:
        self._producer = producer
        self.topic = topic
        self._max_pending = max_pending
        self._pending: dict[int, list[tuple[bytes, bytes]]] = {}
        self._count = 0
        self._written: asyncio.Future[None] | None = None
        self._flushing: set[asyncio.Future[Any]] = set()

    def write(self, partition: int, key: str, first_seen_ms: int) -> asyncio.Future[None]:
        # Serialized as faust's json codec does, so table recovery reads it back.
        entry = (orjson.dumps(key), orjson.dumps(first_seen_ms))
        self._pending.setdefault(partition, []).append(entry)
        self._count += 1
        if self._written is None:
            self._written = asyncio.get_running_loop().create_future()
        written = self._written
        if self._count >= self._max_pending:
            task = asyncio.ensure_future(self.flush())
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)
        return written

    async def flush(self) -> None:
        """Send every queued entry (without waiting for the broker's acknowledgement)."""
        if not self._pending:
            return
        pending, self._pending, self._count = self._pending, {}, 0
        written, self._written = self._written, None
        producer = await self._producer()
        now_ms = int(time.time() * 1000)
        sends = []
        for partition, entries in pending.items():
            batch = producer.create_batch()
            for key, value in entries:
                if batch.append(key=key, value=value, timestamp=now_ms) is None:
                    sends.append(await producer.send_batch(batch, self.topic, partition=partition))
                    batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=now_ms)
            sends.append(await producer.send_batch(batch, self.topic, partition=partition))
        done = asyncio.gather(*sends, return_exceptions=True)
        self._flushing.add(done)
        done.add_done_callback(lambda d: self._flushed(d, written))

    def _flushed(
        self, done: asyncio.Future[list[Any]], written: asyncio.Future[None] | None
    ) -> None:
        self._flushing.discard(done)
        for result in done.result():
            if isinstance(result, BaseException):
                # Only a duplicate after a crash depends on it; the stream goes on.
                log.warning("dedup: changelog entries were not written: %r", result)
        if written is not None and not written.done():
            written.set_result(None)

    async def wait_written(self) -> None:
        """Wait until every flushed entry is acknowledged (tests, shutdown)."""
        await self.flush()
        while self._flushing:
            await asyncio.gather(*self._flushing, return_exceptions=True)


def changelog_topic_configs(horizon: dt.timedelta) -> dict[str, str]:
    """Topic configs of the dedup changelog: compacted, and deleted after the horizon (plus a
    day, so a restarted worker still sees the ids at the edge of the horizon)."""
    retention = horizon + dt.timedelta(days=1)
    return {
        "cleanup.policy": "compact,delete",
        "retention.ms": str(int(retention.total_seconds() * 1000)),
    }


class DedupIndex:
    """Which events were accepted (and which records dead-lettered) within the horizon.

    Args:
        store: the faust table's local store (``table.data``): key -> first seen, in ms.
        changelog: where entries for the table's changelog topic go (a
            :class:`ChangelogWriter`). The worker writes them itself rather than through
            ``table[key] = ...``: faust's buffered changelog path stalls commits under load,
            and the partition must be the source record's own (faust would take the
            partition of the "current" event).
        horizon: how long an id counts as seen.
    """

    def __init__(
        self,
        store: MutableMapping[Any, Any],
        changelog: ChangelogSink | None,
        horizon: dt.timedelta,
    ) -> None:
        self._store = store
        self._changelog = changelog
        self._horizon_ms = int(horizon.total_seconds() * 1000)

    def seen(self, key: str, now_ms: int) -> bool:
        """True when ``key`` was accepted less than a horizon before ``now_ms``."""
        first = self._store.get(key)
        return first is not None and now_ms - int(first) < self._horizon_ms

    def remember(self, key: str, partition: int, now_ms: int) -> asyncio.Future[None] | None:
        """Record ``key`` as seen now, in the changelog partition of its source partition.

        Returns:
            A future done once the changelog entry is written (``None`` without a
            changelog). The worker acks the source record after it, so a committed offset
            implies a durable id; should the write fail, the record is acked anyway (a
            crash could then repeat the event, which the store removes by id).
        """
        self._store[key] = now_ms
        if self._changelog is None:
            return None
        return self._changelog.write(partition, key, now_ms)

    def expire(self, now_ms: int) -> int:
        """Forget keys older than the horizon from memory; returns how many.

        The changelog keeps them until its retention deletes the segment; they are ignored
        by :meth:`seen` if a recovery reads them back.
        """
        old = [
            k for k, first in list(self._store.items()) if now_ms - int(first) >= self._horizon_ms
        ]
        for key in old:
            del self._store[key]
        return len(old)

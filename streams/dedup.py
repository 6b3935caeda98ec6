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
between can produce a duplicate (the store removes it by event id) but never a loss.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["ChangelogSend", "DedupIndex", "changelog_topic_configs"]

log = logging.getLogger(__name__)


ChangelogSend = Callable[[int, str, int], Awaitable[Any]]
"""``send(partition, key, first_seen_ms)`` writes one entry to the changelog topic."""


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
        changelog: writes an entry to the table's changelog topic. The worker writes it with
            its producer directly rather than through ``table[key] = ...``: faust's buffered
            changelog path stalls commits under load, and the partition must be the source
            record's own (faust would take the partition of the "current" event).
        horizon: how long an id counts as seen.
    """

    def __init__(
        self,
        store: MutableMapping[Any, Any],
        changelog: ChangelogSend | None,
        horizon: dt.timedelta,
    ) -> None:
        self._store = store
        self._changelog = changelog
        self._horizon_ms = int(horizon.total_seconds() * 1000)
        self._writes: set[asyncio.Future[Any]] = set()

    def seen(self, key: str, now_ms: int) -> bool:
        """True when ``key`` was accepted less than a horizon before ``now_ms``."""
        first = self._store.get(key)
        return first is not None and now_ms - int(first) < self._horizon_ms

    def remember(self, key: str, partition: int, now_ms: int) -> None:
        """Record ``key`` as seen now, in the changelog partition of its source partition.

        The changelog write is not awaited: the commit of the source offset flushes the
        producer first, and a lost write only costs a duplicate after a crash.
        """
        self._store[key] = now_ms
        if self._changelog is not None:
            write = asyncio.ensure_future(self._changelog(partition, key, now_ms))
            self._writes.add(write)
            write.add_done_callback(self._written)

    def _written(self, write: asyncio.Future[Any]) -> None:
        self._writes.discard(write)
        if not write.cancelled() and write.exception() is not None:
            log.warning("dedup: a changelog write failed: %r", write.exception())

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

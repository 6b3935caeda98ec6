"""Count what applications produce and receive, for the computed integrated status.

Services that see events (the store sink for every valid event an application produced, the
deliverers for events a subscriber application received) count them here; the tracker adds
them up in memory and writes one row per application and day every few seconds, so counting
costs nothing on the hot path and the database sees a handful of writes a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Protocol

from .exceptions import NotFound

__all__ = ["ActivitySink", "ActivityTracker"]

log = logging.getLogger(__name__)


class ActivitySink(Protocol):
    """Where counts go: :class:`lintas.directory.Directory` is one."""

    async def record_activity(
        self,
        app_id: str,
        *,
        produced: int = 0,
        received: int = 0,
        at: dt.datetime | None = None,
    ) -> None: ...


@dataclass
class _Counts:
    produced: int = 0
    received: int = 0
    last: dt.datetime | None = None


class ActivityTracker:
    """Buffers per-application counts and flushes them every ``interval`` seconds.

    Usage::

        tracker = ActivityTracker(directory)
        await tracker.start()
        tracker.produced("siak")        # cheap, no I/O
        await tracker.stop()            # flushes what is left
    """

    def __init__(self, sink: ActivitySink, *, interval: float = 5.0) -> None:
        self._sink = sink
        self._interval = interval
        self._counts: dict[tuple[str, dt.date], _Counts] = defaultdict(_Counts)
        self._task: asyncio.Task[None] | None = None

    def produced(self, app_id: str, count: int = 1, *, at: dt.datetime | None = None) -> None:
        self._add(app_id, at, produced=count)

    def received(self, app_id: str, count: int = 1, *, at: dt.datetime | None = None) -> None:
        self._add(app_id, at, received=count)

    def _add(
        self, app_id: str, at: dt.datetime | None, *, produced: int = 0, received: int = 0
    ) -> None:
        at = at or dt.datetime.now(dt.UTC)
        counts = self._counts[(app_id, at.astimezone(dt.UTC).date())]
        counts.produced += produced
        counts.received += received
        counts.last = at if counts.last is None else max(counts.last, at)

    async def flush(self) -> None:
        """Write the buffered counts; a failed write keeps them for the next flush."""
        pending, self._counts = self._counts, defaultdict(_Counts)
        for (app_id, _day), counts in pending.items():
            try:
                await self._sink.record_activity(
                    app_id, produced=counts.produced, received=counts.received, at=counts.last
                )
            except NotFound:
                # Events from a source the directory does not know count for no application.
                log.warning("activity of unknown application %r dropped", app_id)
            except Exception as exc:  # the database is away: keep the counts, retry later
                log.warning("activity flush failed, will retry: %s", exc)
                keep = self._counts[(app_id, _day)]
                keep.produced += counts.produced
                keep.received += counts.received
                if counts.last is not None:
                    keep.last = counts.last if keep.last is None else max(keep.last, counts.last)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="activity-tracker")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

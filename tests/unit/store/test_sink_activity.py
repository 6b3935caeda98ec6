"""The store sink counts what it stored as activity of the producing applications."""

from __future__ import annotations

import datetime as dt
from typing import Any

from lintas.consumers.sinks._convert import StoredEvent
from lintas.consumers.sinks.service import count_produced
from lintas.consumers.store.rows import RAW_COLUMNS
from lintas.directory import ActivityTracker


class _Recorded:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int, dt.datetime | None]] = []

    async def record_activity(
        self, app_id: str, *, produced: int = 0, received: int = 0, at: dt.datetime | None = None
    ) -> None:
        self.calls.append((app_id, produced, received, at))


def _event(app: str, at: dt.datetime) -> StoredEvent:
    raw: list[Any] = [None] * len(RAW_COLUMNS)
    raw[RAW_COLUMNS.index("application")] = app
    raw[RAW_COLUMNS.index("ingest_time")] = at
    return StoredEvent(writer=None, raw=tuple(raw), typed=(), record=None)  # type: ignore[arg-type]


async def test_stored_events_count_per_application_and_day() -> None:
    sink = _Recorded()
    tracker = ActivityTracker(sink)
    t0 = dt.datetime(2026, 11, 23, 3, 0, tzinfo=dt.UTC)
    later = t0 + dt.timedelta(minutes=5)
    count_produced(tracker, [_event("siak", t0), _event("siak", later), _event("simpus", t0)])
    await tracker.flush()
    assert sorted(sink.calls) == [("siak", 2, 0, later), ("simpus", 1, 0, t0)]

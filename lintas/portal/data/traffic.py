"""Source: ``lintas.metrics``, the stream workers' one-minute counts per OPD, event type and
outcome. The portal keeps a rolling window of them in memory (see :class:`TopicFollower`).

The record format (written by :func:`lintas.streams.metrics.encode_metric`) is read in
exactly one place, :func:`parse_metric`; a unit test encodes with the one and decodes with the
other so they cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from .sections import Panel, Traffic, TrafficRow

__all__ = ["OUTCOMES", "MetricPoint", "TrafficWindow", "parse_metric"]

SOURCE = "kafka:lintas.metrics"
OUTCOMES = ("accepted", "dead_lettered", "duplicate")
MINUTE_HORIZON = dt.timedelta(hours=26)
"""Minute counts older than this are final and folded into day totals."""
DAYS = 7


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One worker's count of one window: ``count`` events of ``event_type`` had ``outcome``."""

    minute: dt.datetime
    opd: str
    event_type: str
    outcome: str
    count: int
    worker: str = ""


def _instant(value: Any) -> dt.datetime:
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value / 1000, dt.UTC)
    parsed = dt.datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def parse_metric(value: bytes | None) -> MetricPoint | None:
    """Decode one ``lintas.metrics`` record; None for a record that is not a count.

    The value is a JSON object ``{"window_start": <ISO 8601>, "window_end": ..., "opd": ...,
    "event_type": ..., "outcome": "accepted"|"dead_lettered"|"duplicate", "count": N,
    "worker": ...}``: one worker's share of a window. The shares of a window add up; the same
    worker's record for the same window and key counts once, so reading the topic again after
    a reconnect does not double the figures.
    """
    if not value:
        return None
    doc = orjson.loads(value)
    if not isinstance(doc, Mapping) or doc.get("outcome") not in OUTCOMES:
        return None
    start = _instant(doc["window_start"])
    return MetricPoint(
        minute=start.replace(second=0, microsecond=0),
        opd=str(doc["opd"]),
        event_type=str(doc["event_type"]),
        outcome=str(doc["outcome"]),
        count=int(doc["count"]),
        worker=str(doc.get("worker", "")),
    )


class TrafficWindow:
    """The last days of one-minute counts, fed by a follower of ``lintas.metrics``.

    Args:
        zone: the display time zone; "per day" means a day there (WIB by default).
    """

    def __init__(self, zone: ZoneInfo) -> None:
        self._zone = zone
        # (minute, opd, event type, outcome, worker) -> count
        self._minutes: dict[tuple[dt.datetime, str, str, str, str], int] = {}
        self._days: dict[tuple[dt.date, str, str, str], int] = defaultdict(int)
        # handle() runs on the event loop, panel() too, but tests feed from other threads.
        self._lock = threading.Lock()

    def handle(self, record: Any) -> None:
        """Follower callback: take one ``lintas.metrics`` record."""
        point = parse_metric(record.value)
        if point is not None:
            self.add(point)

    def add(self, point: MetricPoint) -> None:
        with self._lock:
            key = (point.minute, point.opd, point.event_type, point.outcome, point.worker)
            self._minutes[key] = point.count

    def _fold(self, now: dt.datetime) -> None:
        limit = now - MINUTE_HORIZON
        old = [key for key in self._minutes if key[0] < limit]
        for key in old:
            minute, opd, event_type, outcome, _ = key
            day = minute.astimezone(self._zone).date()
            self._days[(day, opd, event_type, outcome)] += self._minutes.pop(key)
        first_day = now.astimezone(self._zone).date() - dt.timedelta(days=DAYS)
        for day_key in [k for k in self._days if k[0] < first_day]:
            del self._days[day_key]

    def panel(self, *, now: dt.datetime | None = None) -> Panel[Traffic]:
        """Per minute (last hour), per day (last week) and per event type (last 24 hours)."""
        now = now or dt.datetime.now(dt.UTC)
        with self._lock:
            self._fold(now)
            minutes = dict(self._minutes)
            days = dict(self._days)
        this_minute = now.replace(second=0, microsecond=0)
        hour = [this_minute - dt.timedelta(minutes=m) for m in range(59, -1, -1)]
        per_minute: dict[dt.datetime, dict[str, int]] = {m: {} for m in hour}
        today = now.astimezone(self._zone).date()
        week = [today - dt.timedelta(days=d) for d in range(DAYS - 1, -1, -1)]
        per_day: dict[dt.date, dict[str, int]] = {d: {} for d in week}
        rows: dict[tuple[str, str], dict[str, int]] = {}
        since = now - dt.timedelta(hours=24)
        for (minute, opd, event_type, outcome, _), count in minutes.items():
            if outcome == "accepted":
                if minute in per_minute:
                    per_minute[minute][opd] = per_minute[minute].get(opd, 0) + count
                day = minute.astimezone(self._zone).date()
                if day in per_day:
                    per_day[day][opd] = per_day[day].get(opd, 0) + count
            if minute >= since:
                row = rows.setdefault((opd, event_type), dict.fromkeys(OUTCOMES, 0))
                row[outcome] += count
        for (day, opd, _, outcome), count in days.items():
            if outcome == "accepted" and day in per_day:
                per_day[day][opd] = per_day[day].get(opd, 0) + count
        last_complete = this_minute - dt.timedelta(minutes=1)
        data = Traffic(
            per_minute=sorted(per_minute.items()),
            per_day=sorted(per_day.items()),
            by_type_24h=[
                TrafficRow(opd=opd, event_type=et, **counts)
                for (opd, et), counts in sorted(rows.items())
            ],
            last_minute_total=sum(per_minute.get(last_complete, {}).values()),
            total_24h=sum(r["accepted"] for r in rows.values()),
        )
        if not minutes and not days:
            return Panel.empty(SOURCE, data)
        return Panel.ok(data, SOURCE)

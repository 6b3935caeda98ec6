"""Stage 6: counts per OPD, event type and outcome in tumbling windows, for the dashboard.

Each worker counts what it processed in windows of ``LINTAS_STREAMS__METRICS_WINDOW_S``
seconds (one minute) of processing time, and writes one record per (event type, outcome) to
``lintas.metrics`` when a window closes. A record is a worker's share: the dashboard sums the
shares of a window. Key ``<event type>|<outcome>``, JSON value::

    {"window_start": "2025-06-10T03:05:00+00:00", "window_end": "2025-06-10T03:06:00+00:00",
     "opd": "dukcapil", "event_type": "dukcapil.kematian_dicatat.v1",
     "outcome": "accepted", "count": 118, "worker": "host-1:4711"}

Counts are operational, not an audit: the open window of a killed worker is lost, and events
reprocessed after a crash are counted again (as ``duplicate`` when dedup catches them).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import defaultdict
from dataclasses import dataclass

import orjson

__all__ = ["MetricRecord", "Outcome", "WindowCounter", "encode_metric"]

UNKNOWN = "unknown"


class Outcome(enum.StrEnum):
    ACCEPTED = "accepted"
    DEAD_LETTERED = "dead_lettered"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricRecord:
    """One worker's count of one (event type, outcome) in one window."""

    window_start: dt.datetime
    window_end: dt.datetime
    opd: str
    event_type: str
    outcome: Outcome
    count: int
    worker: str


def encode_metric(record: MetricRecord) -> tuple[bytes, bytes]:
    """The Kafka key and JSON value of a metric record."""
    key = f"{record.event_type}|{record.outcome.value}".encode()
    value = orjson.dumps(
        {
            "window_start": record.window_start.isoformat(),
            "window_end": record.window_end.isoformat(),
            "opd": record.opd,
            "event_type": record.event_type,
            "outcome": record.outcome.value,
            "count": record.count,
            "worker": record.worker,
        }
    )
    return key, value


class WindowCounter:
    """Counts outcomes in tumbling windows of processing time.

    Args:
        window_s: the window width in seconds (windows start at multiples of it).
        worker: this worker's name, copied into each record.
    """

    def __init__(self, window_s: int, worker: str) -> None:
        self._window_s = window_s
        self._worker = worker
        self._counts: dict[int, dict[tuple[str, str, Outcome], int]] = defaultdict(
            lambda: defaultdict(int)
        )

    def _start(self, now: dt.datetime) -> int:
        epoch = int(now.timestamp())
        return epoch - epoch % self._window_s

    def add(
        self,
        opd: str | None,
        event_type: str | None,
        outcome: Outcome,
        now: dt.datetime,
        count: int = 1,
    ) -> None:
        """Count ``count`` records of ``event_type`` with ``outcome`` at ``now``."""
        key = (opd or UNKNOWN, event_type or UNKNOWN, outcome)
        self._counts[self._start(now)][key] += count

    def closed(self, now: dt.datetime) -> list[MetricRecord]:
        """Remove and return the records of every window that ended by ``now``."""
        current = self._start(now)
        return self._pop([start for start in self._counts if start < current])

    def drain(self) -> list[MetricRecord]:
        """Remove and return every record, the open window's too (at shutdown)."""
        return self._pop(list(self._counts))

    def _pop(self, starts: list[int]) -> list[MetricRecord]:
        out: list[MetricRecord] = []
        for start in sorted(starts):
            begin = dt.datetime.fromtimestamp(start, dt.UTC)
            end = begin + dt.timedelta(seconds=self._window_s)
            for (opd, event_type, outcome), count in sorted(self._counts.pop(start).items()):
                out.append(
                    MetricRecord(
                        window_start=begin,
                        window_end=end,
                        opd=opd,
                        event_type=event_type,
                        outcome=outcome,
                        count=count,
                        worker=self._worker,
                    )
                )
        return out

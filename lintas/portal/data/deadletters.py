"""Source: ``lintas.dlq``, the dead-letter topic. Counts by reason and OPD over 24 hours.

Only headers are read: the reason code and OPD the stream workers add (``lintas.dlq.reason``,
``lintas.dlq.opd``; see :mod:`lintas.streams.dlq`), falling back to the CloudEvents source the
producing app set (``ce_source`` = ``/opd/<opd>/<app>``). Keys and values, which hold
personal data, are never decoded.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter, deque
from typing import Any

from .sections import DeadLetters, Panel

__all__ = ["REASON_HEADER", "DeadLetterWindow"]

SOURCE = "kafka:lintas.dlq"
REASON_HEADER = "lintas.dlq.reason"
OPD_HEADER = "lintas.dlq.opd"
SOURCE_HEADER = "ce_source"
HORIZON = dt.timedelta(hours=24)
UNKNOWN = "unknown"


def _header(headers: Any, name: str) -> str | None:
    for key, value in headers or ():
        if key == name and value is not None:
            return bytes(value).decode("utf-8", "replace")
    return None


def _opd_of(source: str | None) -> str:
    parts = (source or "").strip("/").split("/")
    return parts[1] if len(parts) >= 2 and parts[0] == "opd" else UNKNOWN


class DeadLetterWindow:
    """Dead letters of the last 24 hours, fed by a follower of ``lintas.dlq``."""

    def __init__(self) -> None:
        self._entries: deque[tuple[int, str, str]] = deque()
        self._lock = threading.Lock()

    def handle(self, record: Any) -> None:
        """Follower callback: take one dead letter's headers."""
        reason = _header(record.headers, REASON_HEADER) or UNKNOWN
        opd = _header(record.headers, OPD_HEADER) or _opd_of(_header(record.headers, SOURCE_HEADER))
        with self._lock:
            self._entries.append((int(record.timestamp), reason, opd))

    def panel(self, *, now: dt.datetime | None = None) -> Panel[DeadLetters]:
        now = now or dt.datetime.now(dt.UTC)
        limit = int((now - HORIZON).timestamp() * 1000)
        with self._lock:
            while self._entries and self._entries[0][0] < limit:
                self._entries.popleft()
            entries = [e for e in self._entries if e[0] >= limit]
        reasons = Counter(e[1] for e in entries)
        opds = Counter(e[2] for e in entries)
        data = DeadLetters(
            total_24h=len(entries),
            by_reason=sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])),
            by_opd=sorted(opds.items(), key=lambda kv: (-kv[1], kv[0])),
        )
        return Panel.ok(data, SOURCE) if entries else Panel.empty(SOURCE, data)

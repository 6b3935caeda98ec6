"""The dashboard's figures, one dataclass per panel, and the envelope every panel shares.

Every panel comes from exactly one source (see the sibling modules) and is wrapped in a
:class:`Panel` that says whether the source had figures (``ok``), had nothing yet
(``no_data``: the page shows "belum ada data"), or failed (``error``, with a message that
holds no personal data). Nothing here carries personal data: only counts, names of OPDs,
applications, event types, consumer groups and subscribers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

__all__ = [
    "DeliveryHealth",
    "DeadLetters",
    "Freshness",
    "GroupLag",
    "Health",
    "Integration",
    "OpdIntegration",
    "Panel",
    "PanelState",
    "Probe",
    "Traffic",
    "TrafficRow",
    "to_jsonable",
]

T = TypeVar("T")


class PanelState(StrEnum):
    OK = "ok"
    NO_DATA = "no_data"
    ERROR = "error"


@dataclass(frozen=True, slots=True, kw_only=True)
class Panel(Generic[T]):
    """One panel's figures and where they stand."""

    state: PanelState
    data: T | None = None
    error: str | None = None
    source: str = ""
    """Where the figures come from (``directory``, ``kafka:lintas.metrics``, ...)."""

    @classmethod
    def ok(cls, data: T, source: str) -> Panel[T]:
        return cls(state=PanelState.OK, data=data, source=source)

    @classmethod
    def empty(cls, source: str, data: T | None = None) -> Panel[T]:
        return cls(state=PanelState.NO_DATA, data=data, source=source)

    @classmethod
    def failed(cls, source: str, error: str) -> Panel[T]:
        return cls(state=PanelState.ERROR, error=error, source=source)


@dataclass(frozen=True, slots=True, kw_only=True)
class OpdIntegration:
    opd: str
    name: str
    applications: int
    integrated: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Integration:
    """The SPBE indicator: applications that produced or received a real event recently."""

    total: int
    integrated: int
    window_days: int
    per_opd: list[OpdIntegration]
    history: list[tuple[dt.date, int]]
    """Integrated applications at the end of each of the last days, oldest first."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TrafficRow:
    opd: str
    event_type: str
    accepted: int = 0
    dead_lettered: int = 0
    duplicate: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Traffic:
    """Events by OPD and event type, from the stream workers' one-minute counts."""

    per_minute: list[tuple[dt.datetime, dict[str, int]]]
    """The last hour, one entry per minute: OPD -> accepted events."""
    per_day: list[tuple[dt.date, dict[str, int]]]
    """The last days, one entry per day: OPD -> accepted events."""
    by_type_24h: list[TrafficRow]
    last_minute_total: int
    total_24h: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetters:
    total_24h: int
    by_reason: list[tuple[str, int]]
    by_opd: list[tuple[str, int]]


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupLag:
    group: str
    lag: int
    topics: list[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryHealth:
    """One webhook subscriber's delivery pipeline, as Kafka sees it."""

    subscriber: str
    status: str
    routed: int
    """Events routed to it so far (records on ``lintas.deliver.<name>``)."""
    backlog: int | None
    """Routed events its deliverer has not consumed yet; None when no deliverer has read."""
    failed: int
    """Events given up on (records on ``lintas.deliver.<name>.dlq``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Freshness:
    """How far the merged store is behind the canonical topics."""

    backlog: int
    newest_stored_age_s: float | None
    topics: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Probe:
    name: str
    up: bool
    latency_ms: float | None
    count: int | None = None
    """Brokers (Kafka) or subjects (registry) found, for the page to word in its language."""
    detail: str = ""
    """The server's version, or why the probe failed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Health:
    probes: list[Probe] = field(default_factory=list)


def to_jsonable(value: Any) -> Any:
    """Dataclasses, dates and enums as plain JSON values (for the dashboard endpoint)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, StrEnum):
        return value.value
    return value

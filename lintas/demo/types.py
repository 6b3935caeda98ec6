"""Value types the demo's parts pass to each other."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

__all__ = ["BadKind", "Outcome", "OutcomeStatus", "SimEvent"]


class BadKind(enum.StrEnum):
    """How a deliberately bad event is wrong. Each value is the dead-letter reason code the
    stream worker gives it (``lintas.streams.Reason``): the contract's patterns still hold,
    so producers and the gateway take it, and only the worker's domain rules refuse it."""

    INVALID_NIK = "invalid_nik"
    """A NIK of 16 digits with an unknown province code or an impossible birth date."""
    UNKNOWN_WILAYAH = "unknown_wilayah"
    """A ``kode_wilayah`` shaped like a village code that names no village."""
    FUTURE_DATE = "future_date"
    """The moment the event was recorded lies days ahead (a wrong server clock)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SimEvent:
    """One generated event, ready to publish.

    Attributes:
        event_type: the catalog id, ``dukcapil.kematian_dicatat.v1``.
        record: the event as an Avro dict (``date``, ``datetime``, ``Decimal``, ``UUID``).
        id: its CloudEvents id, chosen before publishing so it can be followed.
        bad: how it was spoilt, when it is one of the deliberately bad events.
    """

    event_type: str
    record: dict[str, Any]
    id: str
    bad: BadKind | None = None


class OutcomeStatus(enum.StrEnum):
    SENT = "sent"
    """In Kafka (acknowledged)."""
    SPOOLED = "spooled"
    """On disk in a producer spool (the SDK's or the gateway's); it will reach Kafka."""
    REFUSED = "refused"
    """Refused for good (a 4xx from the gateway, a contract violation in the SDK)."""
    FAILED = "failed"
    """Not taken, for a reason that may pass (the gateway is away, a timeout)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one published event."""

    event_id: str
    status: OutcomeStatus
    detail: str = ""

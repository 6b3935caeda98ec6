"""The CloudEvents envelope of a record: attributes in Kafka headers (binary mode).

The CloudEvents 1.0 Kafka protocol binding puts each attribute in a header named ``ce_<name>``
and the content type in ``content-type``; the value is the event data (Confluent-framed Avro)::

    ce_specversion  1.0
    ce_id           9b2f0c6e-...            unique per source; the dedup key with ce_source
    ce_source       /opd/dukcapil/siak      the OPD and the application that produced it
    ce_type         dukcapil.kematian_dicatat.v1   (a reverse-DNS prefix is allowed)
    ce_time         2025-06-10T03:05:00Z    when it happened (optional)
    ce_subject      3273012108480001        what it is about (optional; the Kafka key too)
    content-type    application/avro        (optional)
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from lintas.schemas import EventType

from .dlq import Headers, Reason
from .exceptions import RecordRejected

__all__ = [
    "CE_ID",
    "CE_SOURCE",
    "CE_SPECVERSION",
    "CE_SUBJECT",
    "CE_TIME",
    "CE_TYPE",
    "CONTENT_TYPE",
    "Envelope",
    "names_event_type",
    "read_envelope",
]

CE_SPECVERSION = "ce_specversion"
CE_ID = "ce_id"
CE_SOURCE = "ce_source"
CE_TYPE = "ce_type"
CE_TIME = "ce_time"
CE_SUBJECT = "ce_subject"
CONTENT_TYPE = "content-type"

# OPD codes and application names as the producer SDK checks them.
_NAME = r"[a-z0-9][a-z0-9_-]{0,62}"
_SOURCE = re.compile(rf"/opd/(?P<opd>{_NAME})/(?P<app>{_NAME})")
_MAX_ATTRIBUTE_CHARS = 256
_WANTED = frozenset({CE_SPECVERSION, CE_ID, CE_SOURCE, CE_TYPE, CE_TIME, CE_SUBJECT, CONTENT_TYPE})


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """The CloudEvents attributes of one record.

    Attributes:
        id: ``ce_id``; with ``source``, unique per event (the CloudEvents rule).
        source: ``ce_source``, ``/opd/<opd>/<app>``.
        type: ``ce_type`` as written.
        time: ``ce_time``, aware, or ``None`` when the producer did not say.
        subject: ``ce_subject`` or ``None``.
        opd, app: the two parts of ``source``.
    """

    id: str
    source: str
    type: str
    time: dt.datetime | None
    subject: str | None
    opd: str
    app: str

    @property
    def dedup_key(self) -> str:
        """``<source> <id>``: the id is only unique within its source (CloudEvents)."""
        return f"{self.source} {self.id}"


def names_event_type(ce_type: str, event_type: EventType) -> bool:
    """True when ``ce_type`` names ``event_type``: its id, a reverse-DNS-prefixed id
    (``id.go.bandung.dukcapil.kematian_dicatat.v1``) or its Avro full name."""
    return (
        ce_type == event_type.id
        or ce_type.endswith("." + event_type.id)
        or ce_type == event_type.full_name
    )


def _attributes(headers: Headers) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, raw in headers:
        if name not in _WANTED:
            continue
        try:
            value = raw.decode("utf-8") if raw is not None else ""
        except UnicodeDecodeError:
            raise RecordRejected(
                Reason.INVALID_ENVELOPE, f"header {name} is not UTF-8 text", field=name
            ) from None
        if len(value) > _MAX_ATTRIBUTE_CHARS:
            raise RecordRejected(
                Reason.INVALID_ENVELOPE,
                f"header {name} is {len(value)} characters long (at most {_MAX_ATTRIBUTE_CHARS})",
                field=name,
            )
        found[name] = value
    return found


def read_envelope(headers: Headers, *, opd: str | None = None) -> Envelope:
    """Read and check the CloudEvents attributes of a record.

    Args:
        headers: the record's Kafka headers.
        opd: the OPD the topic belongs to; ``ce_source`` must name the same one.

    Raises:
        RecordRejected: ``missing_envelope`` without ``ce_specversion``, ``ce_id``,
            ``ce_source`` or ``ce_type``; ``invalid_envelope`` when one is malformed.
    """
    attrs = _attributes(headers)
    missing = [n for n in (CE_ID, CE_TYPE, CE_SOURCE, CE_SPECVERSION) if not attrs.get(n)]
    if missing:
        raise RecordRejected(
            Reason.MISSING_ENVELOPE,
            "not a CloudEvent in Kafka binary mode: header(s) " + ", ".join(missing) + " missing",
            field=missing[0],
        )
    if attrs[CE_SPECVERSION] != "1.0":
        raise RecordRejected(
            Reason.INVALID_ENVELOPE,
            f"ce_specversion {attrs[CE_SPECVERSION]!r} is not supported (1.0 is)",
            field=CE_SPECVERSION,
        )
    source = _SOURCE.fullmatch(attrs[CE_SOURCE])
    if source is None:
        raise RecordRejected(
            Reason.INVALID_ENVELOPE,
            f"ce_source {attrs[CE_SOURCE]!r} is not /opd/<opd>/<application>",
            field=CE_SOURCE,
        )
    if opd is not None and source["opd"] != opd:
        raise RecordRejected(
            Reason.INVALID_ENVELOPE,
            f"ce_source names OPD {source['opd']!r} but the topic belongs to {opd!r}",
            field=CE_SOURCE,
        )
    time = None
    if attrs.get(CE_TIME):
        try:
            time = dt.datetime.fromisoformat(attrs[CE_TIME])
        except ValueError:
            time = None
        if time is None or time.tzinfo is None:
            raise RecordRejected(
                Reason.INVALID_ENVELOPE,
                f"ce_time {attrs[CE_TIME]!r} is not an RFC 3339 time with an offset",
                field=CE_TIME,
            )
    return Envelope(
        id=attrs[CE_ID],
        source=attrs[CE_SOURCE],
        type=attrs[CE_TYPE],
        time=time,
        subject=attrs.get(CE_SUBJECT) or None,
        opd=source["opd"],
        app=source["app"],
    )

"""The CloudEvents 1.0 envelope in Kafka headers (Kafka protocol binding, binary mode).

Every record carries::

    ce_specversion  1.0
    ce_id           uuid4 unless the caller gives one
    ce_source       /opd/<opd>/<app>
    ce_type         the event type id, dukcapil.kematian_dicatat.v1
    ce_time         RFC 3339 in UTC, millisecond precision: 2025-06-10T03:05:00.123Z
    ce_subject      the event's subject field (the NIK for citizen events), also the key
    content-type    application/avro (the value is Avro in the Confluent wire format)

Names and the spec version come from the ``cloudevents`` SDK's Kafka binding, and a unit
test reads our headers back with that binding. Building the headers goes around the SDK's
event objects: they validate every attribute per event, which would cost more than encoding
the event itself, while everything but id, time and subject is the same for a whole batch.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

from cloudevents.core.bindings.common import CONTENT_TYPE_HEADER
from cloudevents.core.bindings.kafka import CE_PREFIX
from cloudevents.core.spec import SPECVERSION_V1_0

from ._record import Headers

__all__ = [
    "CONTENT_TYPE",
    "EnvelopeTemplate",
    "check_event_id",
    "check_extra_headers",
    "check_name",
    "format_time",
    "source_of",
]

CONTENT_TYPE = "application/avro"
H_SPECVERSION = f"{CE_PREFIX}specversion"
H_ID = f"{CE_PREFIX}id"
H_SOURCE = f"{CE_PREFIX}source"
H_TYPE = f"{CE_PREFIX}type"
H_TIME = f"{CE_PREFIX}time"
H_SUBJECT = f"{CE_PREFIX}subject"

# OPD codes follow the catalog (lowercase letters and digits); app names may also use
# '-' and '_'. Both end up in ce_source and in spool file names, so nothing else.
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_MAX_ID = 256


def check_name(kind: str, value: str) -> str:
    """Return ``value`` if it is a valid OPD code or app name.

    Raises:
        ValueError: it is not (names the kind and the rule).
    """
    if not _NAME_RE.fullmatch(value):
        raise ValueError(
            f"{kind} {value!r} must be 1-63 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return value


def source_of(opd: str, app: str) -> str:
    """``ce_source`` of an application: ``/opd/<opd>/<app>``."""
    return f"/opd/{check_name('OPD code', opd)}/{check_name('app name', app)}"


def format_time(when: dt.datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, millisecond precision (what Avro timestamps keep).

    Raises:
        ValueError: ``when`` is naive (a wall-clock time without a zone is ambiguous).
    """
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("time must be timezone-aware (e.g. datetime.now(UTC))")
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def check_event_id(event_id: str) -> str | None:
    """Why ``event_id`` is not a usable ``ce_id``, or ``None`` when it is."""
    if not event_id:
        return "must not be empty"
    if len(event_id) > _MAX_ID:
        return f"must be at most {_MAX_ID} characters"
    if not event_id.isprintable():
        return "must not contain control characters"
    return None


def check_extra_headers(headers: Mapping[str, bytes]) -> str | None:
    """Why extra headers cannot be added to the envelope, or ``None`` when they can."""
    for name, value in headers.items():
        lowered = name.lower()
        if lowered.startswith(CE_PREFIX) or lowered == CONTENT_TYPE_HEADER:
            return f"header {name!r} belongs to the CloudEvents envelope"
        if not isinstance(value, bytes):
            return f"header {name!r} must be bytes"
    return None


class EnvelopeTemplate:
    """The headers of one (event type, source) pair, with the per-event ones left open.

    Usage::

        template = EnvelopeTemplate("dukcapil.kematian_dicatat.v1", "/opd/dukcapil/siak")
        headers = template.headers(b"<uuid>", b"2025-06-10T03:05:00.123Z", b"3273...")
    """

    __slots__ = ("_source", "_specversion", "_tail", "_type")

    def __init__(self, event_type: str, source: str) -> None:
        self._specversion = (H_SPECVERSION, SPECVERSION_V1_0.encode())
        self._source = (H_SOURCE, source.encode())
        self._type = (H_TYPE, event_type.encode())
        self._tail = (CONTENT_TYPE_HEADER, CONTENT_TYPE.encode())

    def headers(
        self, event_id: bytes, time: bytes, subject: bytes, extra: Mapping[str, bytes] | None
    ) -> Headers:
        """The record's headers; ``extra`` must have passed :func:`check_extra_headers`."""
        headers: Headers = [
            self._specversion,
            (H_ID, event_id),
            self._source,
            self._type,
            (H_TIME, time),
            (H_SUBJECT, subject),
            self._tail,
        ]
        if extra:
            headers.extend(extra.items())
        return headers

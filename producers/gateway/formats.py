"""Request bodies into events: plain JSON, NDJSON and CloudEvents structured mode.

What each endpoint takes (``Content-Type``)::

    POST /v1/events/{event_type}  application/json              the event's data
                                  application/cloudevents+json  one CloudEvent of that type
    POST /v1/events               application/cloudevents+json  one CloudEvent, any type
    POST /v1/events:batch         application/json              [{"event_type", "data", ...}]
                                  application/x-ndjson          one such object per line
                                  application/cloudevents-batch+json  [CloudEvent, ...]

A plain batch element is ``{"event_type": ..., "data": {...}}`` with optional ``id``,
``time`` and ``subject``, the attributes :class:`lintas.producers.Event` takes. A body that
cannot be read at all (not JSON, not an array) is a :class:`~.exceptions.MalformedRequest`;
a readable body whose elements are wrong gives each element its problems, so that a
``?partial=true`` batch can still take the good ones.

CloudEvents attributes are checked with the ``cloudevents`` SDK's v1.0 event (required
attributes, types, extension names); the gateway adds its own rules: ``data`` is a JSON
object, ``datacontenttype`` (when given) is JSON, and ``source`` (when given) is the
calling application's ``/opd/<opd>/<app>``. Extension attributes are accepted and not
forwarded.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson
from cloudevents.core.exceptions import CloudEventValidationError
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from lintas.schemas import FieldError

from .exceptions import MalformedRequest, UnsupportedContentType

__all__ = [
    "BATCH_TYPES",
    "CE_BATCH",
    "CE_SINGLE",
    "JSON",
    "NDJSON",
    "BodyKind",
    "RawEvent",
    "body_kind",
    "media_type",
    "parse_batch",
    "parse_cloudevent",
    "parse_cloudevent_body",
    "parse_single",
]

JSON = "application/json"
NDJSON = "application/x-ndjson"
CE_SINGLE = JSONFormat.CONTENT_TYPE  # application/cloudevents+json
CE_BATCH = "application/cloudevents-batch+json"
BATCH_TYPES = (JSON, NDJSON, CE_BATCH)
_NDJSON_ALIASES = frozenset({NDJSON, "application/jsonl", "application/ndjson"})
_PLAIN_FIELDS = frozenset({"event_type", "data", "id", "time", "subject"})


class BodyKind(StrEnum):
    """How the events arrived; CloudEvents carry their own ids (used for idempotency)."""

    PLAIN = "plain"
    CLOUDEVENTS = "cloudevents"


@dataclass(slots=True)
class RawEvent:
    """One event as read from a request, before it is checked against its contract.

    Attributes:
        index: position in the request (0 for a single event).
        event_type: the event type as the client named it, if it did.
        data: the event's data as decoded from JSON (checked later).
        id, time, subject: envelope attributes the client gave.
        source: the CloudEvents ``source`` the client gave (checked against the caller's).
        problems: what is already wrong with its envelope.
        prefix: put before the paths of data problems (``data.`` inside an envelope).
        type_field: the name the event type has in the request (``type`` for CloudEvents).
    """

    index: int
    event_type: str | None
    data: Any
    id: str | None = None
    time: dt.datetime | None = None
    subject: str | None = None
    source: str | None = None
    problems: list[FieldError] = field(default_factory=list)
    prefix: str = ""
    type_field: str = "event_type"


def media_type(content_type: str | None) -> str:
    """The media type of a ``Content-Type`` header, lowercased, without parameters."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def _problem(field_name: str, rule: str, message: str, value: Any = None) -> FieldError:
    if isinstance(value, dict | list):
        value = None  # whole objects make unreadable error lists; the path says where
    return FieldError(field=field_name, rule=rule, message=message, value=value)


def _loads(body: bytes, where: str = "body") -> Any:
    if not body.strip():
        raise MalformedRequest(where, "it is empty")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequest(where, f"not valid JSON ({exc})") from None


def _time(value: Any, field_name: str, problems: list[FieldError]) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        problems.append(_problem(field_name, "string_type", "must be an RFC 3339 string", value))
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None or parsed.utcoffset() is None:
        problems.append(
            _problem(
                field_name,
                "rfc3339_timestamp",
                "must be an RFC 3339 timestamp with a time zone, like 2025-06-10T03:05:00Z",
                value,
            )
        )
        return None
    return parsed


def _text(value: Any, field_name: str, problems: list[FieldError]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        problems.append(_problem(field_name, "string_type", "must be a non-empty string", value))
        return None
    return value


def parse_single(content_type: str | None, body: bytes, event_type: str) -> RawEvent:
    """The one event of ``POST /v1/events/{event_type}``.

    Raises:
        UnsupportedContentType: neither JSON nor a structured CloudEvent.
        MalformedRequest: the body is not JSON.
    """
    kind = media_type(content_type)
    if kind == CE_SINGLE:
        raw = parse_cloudevent(_loads(body), 0)
        if raw.event_type is not None and raw.event_type != event_type:
            raw.problems.append(
                _problem(
                    "type",
                    "event_type_mismatch",
                    f"the path names {event_type}; send other types to /v1/events",
                    raw.event_type,
                )
            )
        return raw
    if kind != JSON and not kind.endswith("+json"):
        raise UnsupportedContentType(kind, [JSON, CE_SINGLE])
    data = _loads(body)
    raw = RawEvent(index=0, event_type=event_type, data=data)
    if not isinstance(data, dict):
        raw.problems.append(_problem("", "object_type", "the body must be a JSON object"))
    return raw


def parse_cloudevent_body(content_type: str | None, body: bytes) -> RawEvent:
    """The one event of ``POST /v1/events`` (structured mode only).

    Raises:
        UnsupportedContentType: not ``application/cloudevents+json``.
        MalformedRequest: the body is not JSON.
    """
    kind = media_type(content_type)
    if kind != CE_SINGLE:
        raise UnsupportedContentType(kind, [CE_SINGLE])
    return parse_cloudevent(_loads(body), 0)


def body_kind(raws: list[RawEvent]) -> BodyKind:
    """Whether the events came as CloudEvents (their ids then key idempotency)."""
    return BodyKind.CLOUDEVENTS if raws and raws[0].type_field == "type" else BodyKind.PLAIN


def parse_batch(content_type: str | None, body: bytes) -> tuple[BodyKind, list[RawEvent]]:
    """The events of ``POST /v1:events:batch``, in order.

    Raises:
        UnsupportedContentType: not one of :data:`BATCH_TYPES`.
        MalformedRequest: the body (or an NDJSON line) is not JSON, or not an array.
    """
    kind = media_type(content_type)
    if kind in _NDJSON_ALIASES:
        events: list[RawEvent] = []
        for number, line in enumerate(body.splitlines(), start=1):
            if line.strip():
                item = _loads(line, f"line {number}")
                events.append(_plain_element(item, len(events)))
        if not events:
            raise MalformedRequest("body", "it holds no events")
        return BodyKind.PLAIN, events
    if kind not in (JSON, CE_BATCH):
        raise UnsupportedContentType(kind, list(BATCH_TYPES))
    items = _loads(body)
    if not isinstance(items, list):
        raise MalformedRequest("body", "a batch must be a JSON array of events")
    if not items:
        raise MalformedRequest("body", "the array holds no events")
    if kind == CE_BATCH:
        return BodyKind.CLOUDEVENTS, [parse_cloudevent(item, i) for i, item in enumerate(items)]
    return BodyKind.PLAIN, [_plain_element(item, i) for i, item in enumerate(items)]


def _plain_element(item: Any, index: int) -> RawEvent:
    if not isinstance(item, dict):
        raw = RawEvent(index=index, event_type=None, data=None)
        raw.problems.append(
            _problem("", "object_type", 'each event must be {"event_type": ..., "data": {...}}')
        )
        return raw
    problems: list[FieldError] = []
    for name in sorted(set(item) - _PLAIN_FIELDS):
        problems.append(_problem(name, "extra_forbidden", "is not an attribute of a batch event"))
    event_type = item.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        problems.append(
            _problem("event_type", "missing" if event_type is None else "string_type",
                     "the event type id, like dukcapil.kematian_dicatat.v1", event_type)
        )  # fmt: skip
        event_type = None
    data = item.get("data")
    if not isinstance(data, dict):
        problems.append(
            _problem("data", "missing" if data is None else "object_type",
                     "the event's data must be a JSON object", data)
        )  # fmt: skip
    return RawEvent(
        index=index,
        event_type=event_type,
        data=data,
        id=_text(item.get("id"), "id", problems),
        time=_time(item.get("time"), "time", problems),
        subject=_text(item.get("subject"), "subject", problems),
        problems=problems,
        prefix="data.",
    )


def parse_cloudevent(item: Any, index: int) -> RawEvent:
    """One structured-mode CloudEvent (already decoded from JSON), checked as far as it can be
    without knowing the caller: attributes by the ``cloudevents`` SDK, ``data`` by shape."""
    if not isinstance(item, dict):
        raw = RawEvent(index=index, event_type=None, data=None)
        raw.problems.append(_problem("", "object_type", "a CloudEvent must be a JSON object"))
        return raw
    problems: list[FieldError] = []
    attributes = {k: v for k, v in item.items() if k not in ("data", "data_base64")}
    for required in ("specversion", "id", "source", "type"):
        if required not in attributes:
            problems.append(_problem(required, "missing", "a required CloudEvents attribute"))
    time = _time(attributes.get("time"), "time", problems)
    if "time" in attributes:
        if time is None:
            attributes.pop("time")
        else:
            attributes["time"] = time
    if not problems:
        try:
            CloudEvent(dict(attributes))
        except CloudEventValidationError as exc:
            for name, errors in exc.errors.items():
                for error in errors:
                    problems.append(
                        _problem(name, "cloudevents", str(error), _scalar(attributes.get(name)))
                    )
    content_type = attributes.get("datacontenttype")
    if isinstance(content_type, str) and not JSONFormat.JSON_CONTENT_TYPE_PATTERN.match(
        content_type
    ):
        problems.append(
            _problem("datacontenttype", "json_content", "data must be JSON", content_type)
        )
    if "data_base64" in item:
        problems.append(
            _problem("data_base64", "json_content", "data must be JSON, not base64 bytes")
        )
    data = item.get("data")
    if not isinstance(data, dict):
        problems.append(
            _problem("data", "missing" if data is None else "object_type",
                     "the event's data must be a JSON object", data)
        )  # fmt: skip
    type_, source = attributes.get("type"), attributes.get("source")
    event_id, subject = attributes.get("id"), attributes.get("subject")
    return RawEvent(
        index=index,
        event_type=type_ if isinstance(type_, str) and type_ else None,
        data=data,
        id=event_id if isinstance(event_id, str) and event_id else None,
        time=time,
        subject=subject if isinstance(subject, str) and subject else None,
        source=source if isinstance(source, str) and source else None,
        problems=problems,
        prefix="data.",
        type_field="type",
    )


def _scalar(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)

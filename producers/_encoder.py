"""Validate events and encode them into records, before anything is sent.

An event is a catalog model (validated when it was built) or a dict plus its event type
(validated here, with the model). The value is Avro in the Confluent wire format, written
with the schema id the registry holds for the event type's subject (looked up, never
registered: ``lintas schemas register`` registers after the compatibility check), and the
headers are the CloudEvents envelope (:mod:`._envelope`).

Schema ids are remembered in the spool, per registry: a producer restarted while the
network is down still encodes, and spools, the event types it has sent before.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple, cast

from pydantic import ValidationError

from lintas.exceptions import LintasError
from lintas.schemas import (
    AvroSerializer,
    EventModel,
    EventType,
    FieldError,
    SchemaResolver,
    SerializationError,
    UnknownEventType,
    encode,
    field_errors,
    load_catalog,
    model_for,
)

from ._envelope import (
    EnvelopeTemplate,
    check_event_id,
    check_extra_headers,
    format_time,
    source_of,
)
from ._record import Headers, Record
from ._spool import Spool
from .exceptions import SchemaUnavailable, ValidationFailed
from .types import Event, EventLike

__all__ = ["MAX_RECORD_BYTES", "Encoder", "RememberingResolver", "avro_dict", "new_event_ids"]

# aiokafka's and the broker's default max.request.size / max.message.bytes is 1 MiB; leave
# room for the batch header. Catalog events are a few hundred bytes.
MAX_RECORD_BYTES = 1024 * 1024 - 4096


def _fingerprint(schema: str) -> str:
    return hashlib.sha256(schema.encode()).hexdigest()[:32]


class RememberingResolver:
    """A :class:`~lintas.schemas.SchemaResolver` that keeps the ids it learns in the spool.

    It also turns the registry's failures into :class:`SchemaUnavailable`, the error the
    producer promises, whoever the resolver is.

    Args:
        inner: the registry client; ``None`` when no registry is configured (then only
            remembered ids can be used).
        registry: the registry's URL, which scopes the remembered ids (another registry
            numbers schemas differently).
        spool: where ids are remembered; ``None`` keeps them in memory only (the fake
            producer of :mod:`lintas.producers.testing`).
        known: ids remembered earlier, ``(subject, fingerprint) -> id``.
    """

    def __init__(
        self,
        inner: SchemaResolver | None,
        registry: str,
        spool: Spool | None,
        known: dict[tuple[str, str], int],
    ) -> None:
        self._inner = inner
        self._registry = registry
        self._spool = spool
        self._known = known

    async def get_schema(self, schema_id: int) -> Mapping[str, Any] | str:
        if self._inner is None:
            raise LookupError(f"schema id {schema_id}: no registry configured")
        return await self._inner.get_schema(schema_id)

    async def lookup(self, subject: str, schema: str) -> int:
        return await self._resolve(subject, schema, register=False)

    async def register(self, subject: str, schema: str) -> int:
        return await self._resolve(subject, schema, register=True)

    async def _resolve(self, subject: str, schema: str, *, register: bool) -> int:
        key = (subject, _fingerprint(schema))
        known = self._known.get(key)
        if known is not None:
            return known
        if self._inner is None:
            raise SchemaUnavailable(
                subject,
                "no schema registry is configured",
                hint="Set LINTAS_REGISTRY_URL, or pass registry= to the producer.",
            )
        try:
            if register:
                schema_id = await self._inner.register(subject, schema)
            else:
                schema_id = await self._inner.lookup(subject, schema)
        except LookupError as exc:
            raise SchemaUnavailable(
                subject,
                f"the schema is not registered ({exc})",
                hint="Run `lintas schemas register` (the platform team does, once per "
                "catalog change).",
            ) from exc
        except LintasError as exc:
            raise SchemaUnavailable(subject, exc.message) from exc
        except Exception as exc:  # the resolver's transport failed in its own way
            raise SchemaUnavailable(subject, f"{type(exc).__name__}: {exc}") from exc
        self._known[key] = schema_id
        if self._spool is not None:
            await self._spool.remember_schema_id(self._registry, key[0], key[1], schema_id)
        return schema_id


class _TypeInfo(NamedTuple):
    """What encoding needs of an event type, looked up once per producer."""

    event_type: EventType
    schema_id: int
    parsed_schema: dict[str, Any]
    subject_field: str
    topic: str
    template: EnvelopeTemplate
    """The envelope with the producer's own source."""


class Encoder:
    """Turns events into :class:`~._record.Record` s, all or nothing.

    Args:
        serializer: resolves schema ids (its resolver is a :class:`RememberingResolver`).
        app: the application's name, in ``ce_source``.
        opd: the application's OPD code, in ``ce_source``; ``None`` uses each event
            type's OPD.
        topic_of: where events of a type go; the catalog topic by default.
    """

    __slots__ = (
        "_app",
        "_by_class",
        "_by_type",
        "_catalog",
        "_opd",
        "_serializer",
        "_templates",
        "_topic_of",
    )

    def __init__(
        self,
        serializer: AvroSerializer,
        *,
        app: str,
        opd: str | None,
        topic_of: Callable[[EventType], str] | None = None,
    ) -> None:
        self._serializer = serializer
        self._app = app
        self._opd = opd
        self._topic_of = topic_of
        self._catalog = load_catalog()
        self._templates: dict[tuple[str, str], EnvelopeTemplate] = {}
        # Keyed by model class (hashed by identity) on the hot path, by event type id else.
        self._by_class: dict[type[EventModel], _TypeInfo] = {}
        self._by_type: dict[str, _TypeInfo] = {}

    def default_source(self, event_type: EventType) -> str:
        return source_of(self._opd or event_type.opd, self._app)

    async def _info(self, event_type: EventType) -> _TypeInfo:
        info = self._by_type.get(event_type.id)
        if info is None:
            schema_id = await self._serializer.schema_id(event_type)
            info = self._by_type[event_type.id] = _TypeInfo(
                event_type,
                schema_id,
                event_type.parsed_schema,
                event_type.subject_field,
                self._topic_of(event_type) if self._topic_of else event_type.topic,
                self._template(event_type, self.default_source(event_type)),
            )
        return info

    def _template(self, event_type: EventType, source: str) -> EnvelopeTemplate:
        key = (event_type.id, source)
        template = self._templates.get(key)
        if template is None:
            template = self._templates[key] = EnvelopeTemplate(event_type.id, source)
        return template

    async def encode(self, events: Iterable[EventLike]) -> list[Record]:
        """Validate and encode every event; the records in the same order.

        Raises:
            ValidationFailed: an event breaks its contract (``index`` says which); none
                of the events is encoded.
            SchemaUnavailable: an event type's schema id is unknown and the registry
                cannot give it.
        """
        items: Sequence[EventLike] = events if isinstance(events, list | tuple) else list(events)
        now = format_time(dt.datetime.now(dt.UTC)).encode()
        new_ids = new_event_ids(len(items))
        by_class = self._by_class
        records: list[Record] = []
        append = records.append
        for index, item in enumerate(items):
            extra: Event | None = None
            info = by_class.get(type(item))  # type: ignore[arg-type]
            if info is not None:  # a model class seen before: the hot path
                model = cast(EventModel, item)
            elif isinstance(item, EventModel):
                model = item
                info = by_class[type(item)] = await self._info(type(item).__event_type__)
            elif isinstance(item, Event):
                event_type, model = self._model_of(item, index)
                info = await self._info(event_type)
                extra = item
            else:
                raise ValidationFailed(
                    None,
                    [
                        _problem(
                            "",
                            "event_kind",
                            f"expected an event model or Event, got {type(item).__name__}",
                            None,
                        )
                    ],
                    index=index,
                )
            record = avro_dict(model)
            try:
                value = encode(info.schema_id, info.parsed_schema, record)
            except SerializationError as exc:
                raise ValidationFailed(
                    info.event_type.id,
                    [_problem(exc.field or "", "avro_type", exc.message, None)],
                    index=index,
                ) from exc
            if len(value) > MAX_RECORD_BYTES:
                raise ValidationFailed(
                    info.event_type.id,
                    [
                        _problem(
                            "",
                            "too_large",
                            f"the encoded event is {len(value)} bytes; at most "
                            f"{MAX_RECORD_BYTES} fit in a Kafka request",
                            None,
                        )
                    ],
                    index=index,
                )
            key = str(record[info.subject_field]).encode()
            if extra is None:
                event_id = new_ids[index]
                headers = info.template.headers(event_id.encode(), now, key, None)
            else:
                event_id, headers = self._envelope(info, extra, key, now, new_ids[index], index)
            append(Record(info.topic, key, value, headers, event_id))
        return records

    def _model_of(self, item: Event, index: int) -> tuple[EventType, EventModel]:
        data = item.data
        if isinstance(data, EventModel):
            event_type = type(data).__event_type__
            if item.event_type is not None and self._lookup(item.event_type, index) != event_type:
                raise ValidationFailed(
                    event_type.id,
                    [
                        _problem(
                            "event_type",
                            "event_type_mismatch",
                            f"the model is a {event_type.id}",
                            str(item.event_type),
                        )
                    ],
                    index=index,
                )
            return event_type, data
        if item.event_type is None:
            raise ValidationFailed(
                None,
                [_problem("event_type", "missing", "a dict needs its event type", None)],
                index=index,
            )
        event_type = self._lookup(item.event_type, index)
        try:
            return event_type, model_for(event_type).model_validate(data)
        except ValidationError as exc:
            raise ValidationFailed(event_type.id, field_errors(exc), index=index) from exc

    def _lookup(self, event_type: str | EventType, index: int) -> EventType:
        try:
            return self._catalog.get(event_type)
        except UnknownEventType as exc:
            raise ValidationFailed(
                str(event_type),
                [_problem("event_type", "unknown_event_type", exc.message, str(event_type))],
                index=index,
            ) from exc

    def _envelope(
        self,
        info: _TypeInfo,
        extra: Event,
        key: bytes,
        now: bytes,
        new_id: str,
        index: int,
    ) -> tuple[str, Headers]:
        problem = None
        time = now
        if extra.time is not None:
            try:
                time = format_time(extra.time).encode()
            except ValueError as exc:
                problem = _problem("time", "timezone_aware", str(exc), str(extra.time))
        if extra.id is not None and (why := check_event_id(extra.id)):
            problem = _problem("id", "cloudevents_id", f"the event id {why}", extra.id)
        elif extra.source is not None and not extra.source.startswith("/"):
            problem = _problem(
                "source",
                "cloudevents_source",
                "the source must be a path such as /opd/<opd>/<app>",
                extra.source,
            )
        elif extra.headers and (why := check_extra_headers(extra.headers)):
            problem = _problem("headers", "envelope_header", why, None)
        if problem is not None:
            raise ValidationFailed(info.event_type.id, [problem], index=index)
        event_id = extra.id or new_id
        subject = extra.subject.encode() if extra.subject else key
        template = self._template(info.event_type, extra.source) if extra.source else info.template
        headers = template.headers(event_id.encode(), time, subject, extra.headers)
        return event_id, headers


def avro_dict(model: EventModel) -> dict[str, Any]:
    """The record fastavro encodes, from a model.

    ``model_dump`` rather than :func:`lintas.schemas.to_avro_dict`: it runs in pydantic's
    compiled core and is about four times faster. It keeps enum members where
    ``to_avro_dict`` puts their symbols, which encodes to the same bytes (the enums are
    ``StrEnum`` s, equal to their symbols); a unit test checks the bytes for every event
    type of the catalog.
    """
    return model.model_dump()


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def new_event_ids(count: int) -> list[str]:
    """``count`` random UUIDs (version 4, RFC 4122 variant) as text.

    Made from one ``os.urandom`` call: a quarter of the cost of ``str(uuid.uuid4())`` each,
    which shows when a batch holds thousands of events.
    """
    raw = os.urandom(16 * count).hex()
    return [
        f"{raw[i : i + 8]}-{raw[i + 8 : i + 12]}-4{raw[i + 13 : i + 16]}-"
        f"{_VARIANT[raw[i + 16]]}{raw[i + 17 : i + 20]}-{raw[i + 20 : i + 32]}"
        for i in range(0, 32 * count, 32)
    ]


def _problem(field: str, rule: str, message: str, value: Any) -> FieldError:
    return FieldError(field=field, rule=rule, message=message, value=value)

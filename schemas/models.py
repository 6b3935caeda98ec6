"""Pydantic models of the event types, derived from the ``.avsc`` files at import.

The ``.avsc`` is the source of truth: each event type gets one model class named after its
record (``KematianDicatat``), with the Avro types mapped as follows:

=========================================  ===============================================
Avro                                       Python (pydantic v2)
=========================================  ===============================================
``int`` / ``long``                         ``int``, checked to 32 / 64-bit range
``float`` / ``double``, ``boolean``        ``float``, ``bool``
``string`` (+ ``"pattern"`` attribute)     ``str`` (matching the pattern)
``bytes``, ``fixed``                       ``bytes`` (``fixed``: of its size)
``int``/``date``                           :class:`datetime.date`
``long``/``timestamp-millis`` (``-micros``) :class:`datetime.datetime`, tz-aware, kept in UTC
``bytes``/``decimal``                      :class:`decimal.Decimal`, precision and scale checked
``string``/``uuid``                        :class:`uuid.UUID`
``enum``                                   a :class:`enum.StrEnum` named after the enum
``record``                                 a nested model named after the record
``array`` / ``map``                        ``list[T]`` / ``dict[str, T]``
``["null", T]``                            ``T | None``, default ``None``
=========================================  ===============================================

Field descriptions come from ``doc``; a ``pii`` tag shows up in the JSON schema as
``"pii": "<kind>"``. Models forbid unknown fields and are frozen.

Usage::

    model = model_for("dukcapil.kematian_dicatat.v1")
    event = model.model_validate(payload)          # pydantic.ValidationError when invalid
    record = to_avro_dict(event)                   # ready for lintas.schemas.serde.encode
    again = from_avro_dict("dukcapil.kematian_dicatat.v1", record)
"""

from __future__ import annotations

import copy
import datetime as dt
import decimal
import enum
import uuid
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, TypedDict, Union, cast

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    create_model,
)

from ._avro import NAMED, PRIMITIVES, full_name, namespace_of, nullable_branch, resolve
from .catalog import Catalog, EventType, load_catalog
from .exceptions import CatalogError

__all__ = [
    "AvroRecord",
    "EventModel",
    "FieldError",
    "field_errors",
    "from_avro_dict",
    "model_for",
    "to_avro_dict",
]

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1


class AvroRecord(BaseModel):
    """Base of every model derived from an Avro record (nested records included)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Avro full name of the record the model was derived from.
    __avro_name__: ClassVar[str]


class EventModel(AvroRecord):
    """Base of the top-level event models; ``__event_type__`` is the catalog entry."""

    __event_type__: ClassVar[EventType]


class FieldError(TypedDict):
    """One problem of an invalid event, as the HTTP gateway returns it in a 422 body.

    Keys:
        field: dotted path of the field (``anggota[1].nik``; empty for the whole record).
        rule: machine-readable name of the broken rule (pydantic's error type, e.g.
            ``string_pattern_mismatch``, ``missing``, ``extra_forbidden``).
        message: the rule in words.
        value: the offending value, made JSON-safe (``None`` for a missing field).
    """

    field: str
    rule: str
    message: str
    value: Any


def _as_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_as_utc)]
_BASE_MODEL_NAMES = frozenset(dir(BaseModel))


class _ModelBuilder:
    """Turns raw Avro schemas into pydantic types, sharing identical named types."""

    def __init__(self) -> None:
        # (full name, definition JSON) -> Python type: the same enum or record defined the
        # same way in several schemas of an OPD becomes one class; a different definition
        # under the same name (a new major) becomes its own class.
        self._shared: dict[tuple[str, str], Any] = {}

    def build(self, event_type: EventType) -> type[EventModel]:
        named: dict[str, dict[str, Any]] = {}
        local: dict[str, Any] = {}
        model = cast(
            "type[EventModel]",
            self._record(event_type.schema, None, named, local, base=EventModel),
        )
        model.__event_type__ = event_type
        return model

    def _record(
        self,
        schema: dict[str, Any],
        namespace: str | None,
        named: dict[str, dict[str, Any]],
        local: dict[str, Any],
        *,
        base: type[AvroRecord] = AvroRecord,
    ) -> type[AvroRecord]:
        name = full_name(schema["name"], namespace)
        named[name] = schema
        key = (name, repr(schema))
        if base is AvroRecord and key in self._shared:
            local[name] = self._shared[key]
            return cast("type[AvroRecord]", self._shared[key])
        inner_ns = namespace_of(schema, namespace)
        fields: dict[str, Any] = {}
        for spec in schema["fields"]:
            field_name = spec["name"]
            if field_name in _BASE_MODEL_NAMES or field_name.startswith(("model_", "_")):
                raise CatalogError(name, f"field name {field_name!r} clashes with pydantic")
            annotation = self._type(spec["type"], inner_ns, named, local, spec)
            fields[field_name] = (annotation, self._field_info(spec))
        model = create_model(
            schema["name"].rsplit(".", 1)[-1],
            __base__=base,
            __module__=__name__,
            __doc__=schema.get("doc"),
            **fields,
        )
        model.__avro_name__ = name
        local[name] = model
        if base is AvroRecord:
            self._shared[key] = model
        return model

    @staticmethod
    def _field_info(spec: Mapping[str, Any]) -> Any:
        extra = {"pii": spec["pii"]} if "pii" in spec else None
        if "default" not in spec:
            return Field(description=spec.get("doc"), json_schema_extra=extra)
        default = spec["default"]
        if isinstance(default, list | dict):
            value = default
            return Field(
                default_factory=lambda: copy.deepcopy(value),
                description=spec.get("doc"),
                json_schema_extra=extra,
            )
        return Field(default=default, description=spec.get("doc"), json_schema_extra=extra)

    def _type(
        self,
        schema: Any,
        namespace: str | None,
        named: dict[str, dict[str, Any]],
        local: dict[str, Any],
        spec: Mapping[str, Any] | None = None,
    ) -> Any:
        inner = nullable_branch(schema)
        if inner is not None:
            return self._type(inner, namespace, named, local, spec) | None
        if isinstance(schema, list):
            branches = tuple(self._type(s, namespace, named, local, spec) for s in schema)
            return Union[branches]  # noqa: UP007 - a runtime-built union needs the subscript
        if isinstance(schema, str):
            if schema in PRIMITIVES:
                return self._primitive(schema, spec)
            definition, defined_in = resolve(schema, namespace, named)
            return local[full_name(definition["name"], defined_in)]
        kind = schema.get("type")
        logical = schema.get("logicalType")
        if logical is not None:
            mapped = self._logical(schema, kind, logical)
            if mapped is not None:
                return mapped
        if kind in NAMED:
            return self._named(schema, namespace, named, local)
        if kind == "array":
            return list[self._type(schema["items"], namespace, named, local)]  # type: ignore[misc]
        if kind == "map":
            return dict[str, self._type(schema["values"], namespace, named, local)]  # type: ignore[misc]
        return self._type(kind, namespace, named, local, spec)  # {"type": "string"} and such

    @staticmethod
    def _primitive(name: str, spec: Mapping[str, Any] | None) -> Any:
        if name == "string":
            pattern = spec.get("pattern") if spec else None
            return Annotated[str, StringConstraints(pattern=pattern)] if pattern else str
        return {
            "null": None,
            "boolean": bool,
            "int": Annotated[int, Field(ge=INT_MIN, le=INT_MAX)],
            "long": Annotated[int, Field(ge=LONG_MIN, le=LONG_MAX)],
            "float": float,
            "double": float,
            "bytes": bytes,
        }[name]

    @staticmethod
    def _logical(schema: Mapping[str, Any], kind: str, logical: str) -> Any:
        if logical == "date" and kind == "int":
            return dt.date
        if logical in ("timestamp-millis", "timestamp-micros") and kind == "long":
            return UtcDatetime
        if logical in ("local-timestamp-millis", "local-timestamp-micros") and kind == "long":
            return dt.datetime
        if (logical, kind) in (("time-millis", "int"), ("time-micros", "long")):
            return dt.time
        if logical == "uuid" and kind == "string":
            return uuid.UUID
        if logical == "decimal" and kind in ("bytes", "fixed"):
            return Annotated[
                decimal.Decimal,
                Field(max_digits=schema["precision"], decimal_places=schema.get("scale", 0)),
            ]
        return None  # unknown logical types fall back to their underlying type (Avro spec)

    def _named(
        self,
        schema: dict[str, Any],
        namespace: str | None,
        named: dict[str, dict[str, Any]],
        local: dict[str, Any],
    ) -> Any:
        kind = schema["type"]
        if kind in ("record", "error"):
            return self._record(schema, namespace, named, local)
        name = full_name(schema["name"], namespace)
        named[name] = schema
        key = (name, repr(schema))
        python_type: Any = self._shared.get(key)
        if python_type is None:
            if kind == "enum":
                # Through Any: mypy reads a functional Enum call as a class definition.
                python_type = cast(Any, enum.StrEnum)(
                    schema["name"].rsplit(".", 1)[-1],
                    [(symbol, symbol) for symbol in schema["symbols"]],
                    module=__name__,
                )
                python_type.__doc__ = schema.get("doc") or f"Symbols of the Avro enum {name}."
            else:  # fixed
                size = schema["size"]
                python_type = Annotated[bytes, Field(min_length=size, max_length=size)]
            self._shared[key] = python_type
        local[name] = python_type
        return python_type


def _build_all(catalog: Catalog) -> dict[str, type[EventModel]]:
    builder = _ModelBuilder()
    return {event_type.id: builder.build(event_type) for event_type in catalog}


_MODELS: dict[str, type[EventModel]] = _build_all(load_catalog())


def model_for(event_type: str | EventType) -> type[EventModel]:
    """Return the model class of an event type.

    Args:
        event_type: an :class:`EventType`, or anything :meth:`Catalog.get` accepts (id,
            topic, subject).

    Raises:
        UnknownEventType: no such event type in the catalog.
    """
    return _MODELS[load_catalog().get(event_type).id]


def to_avro_dict(model: AvroRecord) -> dict[str, Any]:
    """Return the record as a dict fastavro can encode with the model's schema.

    Enums become their symbols and nested models dicts; dates, datetimes, decimals and
    UUIDs stay Python objects, which fastavro encodes through the schema's logical types.
    """
    return cast("dict[str, Any]", _plain(model))


def from_avro_dict(event_type: str | EventType, record: Mapping[str, Any]) -> EventModel:
    """Return the model of a record decoded by fastavro (or given as a plain dict).

    Raises:
        UnknownEventType: no such event type in the catalog.
        pydantic.ValidationError: the record breaks the model's rules; see
            :func:`field_errors`.
    """
    return model_for(event_type).model_validate(record)


def field_errors(exc: ValidationError) -> list[FieldError]:
    """Turn a pydantic ``ValidationError`` into one :class:`FieldError` per problem.

    Example: ``[{"field": "anggota[1].nik", "rule": "string_pattern_mismatch",
    "message": "String should match pattern '^[0-9]{16}$'", "value": "12345"}]``.
    """
    out: list[FieldError] = []
    for error in exc.errors(include_url=False):
        path = ""
        for part in error["loc"]:
            if isinstance(part, int):
                path += f"[{part}]"
            else:
                path += f".{part}" if path else str(part)
        value = None if error["type"] == "missing" else _json_safe(error.get("input"))
        out.append(FieldError(field=path, rule=error["type"], message=error["msg"], value=value))
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return {name: _plain(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


_SCALARS = (str, int, float, bool, type(None))
_TO_TEXT: tuple[type, ...] = (dt.date, dt.datetime, dt.time, decimal.Decimal, uuid.UUID)


def _json_safe(value: Any, _depth: int = 0) -> Any:
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, _TO_TEXT):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if _depth < 2 and isinstance(value, list | tuple):
        return [_json_safe(v, _depth + 1) for v in value]
    if _depth < 2 and isinstance(value, dict):
        return {str(k): _json_safe(v, _depth + 1) for k, v in value.items()}
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."

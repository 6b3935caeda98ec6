"""Avro in the Confluent wire format, independent of any particular schema registry.

Frame::

    byte 0      magic byte, always 0
    bytes 1-4   schema id, big-endian unsigned 32-bit
    bytes 5-    Avro binary body (schemaless), written with the writer schema

:func:`encode` and :func:`decode` do the byte work synchronously and touch no network;
:class:`AvroSerializer` and :class:`AvroDeserializer` add schema-id resolution through a
:class:`SchemaResolver` (the Lintas registry client, or any Confluent-compatible one,
wrapped) and cache what they learn, so the registry is asked once per subject or id.

The happy path does no validation of its own: fastavro's writer rejects a record that does
not fit, and only then is the record walked to name the field (see :class:`SerializationError`).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from decimal import Decimal
from io import BytesIO
from typing import Any, Protocol, cast, runtime_checkable

import fastavro
import orjson
from fastavro import schemaless_reader, schemaless_writer
from fastavro.validation import validate as _fastavro_validate

from ._avro import NAMED, PRIMITIVES, nullable_branch, type_name
from .catalog import EventType
from .exceptions import DeserializationError, SerializationError, UnknownSchemaId

__all__ = [
    "HEADER_SIZE",
    "MAGIC_BYTE",
    "AvroDeserializer",
    "AvroSerializer",
    "SchemaResolver",
    "decode",
    "encode",
    "parse_header",
    "parse_schema",
]

MAGIC_BYTE = 0
HEADER_SIZE = 5
_HEADER = struct.Struct(">BI")
_MAX_SCHEMA_ID = 2**32 - 1


@runtime_checkable
class SchemaResolver(Protocol):
    """What the serde needs from a schema registry.

    The Lintas registry client implements it; so can a thin wrapper around any
    Confluent-compatible client. Implementations raise
    :class:`~lintas.schemas.exceptions.SchemaNotFound` (or any :class:`LookupError`) when an
    id or subject/schema pair is unknown, and their own (retriable) errors when the registry
    cannot be reached.
    """

    async def get_schema(self, schema_id: int) -> Mapping[str, Any] | str:
        """Return the schema registered under ``schema_id`` (JSON text or its dict)."""
        ...

    async def register(self, subject: str, schema: str) -> int:
        """Register ``schema`` (JSON text) under ``subject``; return its id."""
        ...

    async def lookup(self, subject: str, schema: str) -> int:
        """Return the id of ``schema`` already registered under ``subject``."""
        ...


def parse_schema(schema: Mapping[str, Any] | str) -> dict[str, Any]:
    """Parse an Avro schema (JSON text or dict) with fastavro.

    Raises:
        ValueError: the text is not JSON or not a valid Avro schema (fastavro's error is
            chained).
    """
    try:
        raw = orjson.loads(schema) if isinstance(schema, str) else dict(schema)
        return cast("dict[str, Any]", fastavro.parse_schema(raw))
    except Exception as exc:  # fastavro raises several types for invalid schemas
        raise ValueError(f"not a valid Avro schema: {exc}") from exc


def encode(schema_id: int, parsed_schema: dict[str, Any], record: Mapping[str, Any]) -> bytes:
    """Encode a record in the Confluent wire format.

    Args:
        schema_id: registry id of the writer schema, framed into the header.
        parsed_schema: the writer schema as returned by :func:`parse_schema` (or
            :attr:`EventType.parsed_schema`); parsing per call would dominate the cost.
        record: the record, with Python values for logical types (``date``,
            ``datetime``, ``Decimal``, ``UUID``) and enum symbols as strings.

    Returns:
        Magic byte, schema id, Avro body.

    Raises:
        SerializationError: the record does not fit the schema; names the field path,
            the expected type and the type of the value found.

    Note:
        Only what fastavro's writer refuses is refused here: it writes an ``int`` beyond
        32 bits, for instance, and accepts ISO strings for dates. Validate untrusted input
        with the event's model (:func:`lintas.schemas.model_for`) first.
    """
    buffer = BytesIO()
    buffer.write(_HEADER.pack(MAGIC_BYTE, schema_id))
    try:
        schemaless_writer(buffer, parsed_schema, record)
    except Exception as exc:  # fastavro raises TypeError, ValueError, KeyError, ...
        raise _explain(parsed_schema, record, exc) from exc
    return buffer.getvalue()


def parse_header(
    data: bytes,
    *,
    topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
) -> int:
    """Return the schema id framed in a wire-format message.

    Raises:
        DeserializationError: the message is shorter than the header or does not start
            with the magic byte 0.
    """
    if data is None or len(data) < HEADER_SIZE:
        size = "no value" if data is None else f"{len(data)} bytes"
        raise DeserializationError(
            f"message is too short for the wire-format header ({size}, need at least "
            f"{HEADER_SIZE})",
            topic=topic,
            partition=partition,
            offset=offset,
        )
    magic, schema_id = _HEADER.unpack_from(data)
    if magic != MAGIC_BYTE:
        raise DeserializationError(
            f"unknown magic byte {magic} (expected {MAGIC_BYTE}); the value was not written "
            "by a Confluent-compatible Avro serializer",
            topic=topic,
            partition=partition,
            offset=offset,
        )
    return int(schema_id)


def decode(
    data: bytes,
    writer_schema: dict[str, Any],
    reader_schema: dict[str, Any] | None = None,
    *,
    topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
) -> dict[str, Any]:
    """Decode a wire-format message whose writer schema the caller already resolved.

    Args:
        data: the whole message value, header included.
        writer_schema: the parsed schema the header's id stands for.
        reader_schema: a parsed schema to resolve the record into (Avro schema resolution:
            added fields get their defaults, removed ones are dropped); ``None`` to read
            with the writer schema.
        topic, partition, offset: where the message came from, copied into errors.

    Returns:
        The record, with logical types as Python objects.

    Raises:
        DeserializationError: bad header, truncated or garbage body, trailing bytes, or a
            writer/reader pair that Avro schema resolution cannot reconcile.
    """
    # Hot path: check the frame inline; the schema id is only needed for error messages.
    if data is None or len(data) < HEADER_SIZE or data[0] != MAGIC_BYTE:
        parse_header(data, topic=topic, partition=partition, offset=offset)  # raises
    buffer = BytesIO(data)
    buffer.seek(HEADER_SIZE)
    try:
        record = schemaless_reader(buffer, writer_schema, reader_schema)
    except Exception as exc:  # EOFError, IndexError, UnicodeDecodeError, SchemaResolutionError...
        schema_id = _HEADER.unpack_from(data)[1]
        raise DeserializationError(
            f"the Avro body does not match schema id {schema_id} "
            f"({type(exc).__name__}: {exc or 'truncated'})",
            schema_id=schema_id,
            topic=topic,
            partition=partition,
            offset=offset,
        ) from exc
    # A body that decodes but leaves bytes over was written with another schema.
    if buffer.tell() != len(data) or not isinstance(record, dict):
        schema_id = _HEADER.unpack_from(data)[1]
        reason = (
            f"{len(data) - buffer.tell()} bytes left over after the record; the body was not "
            f"written with schema id {schema_id}"
            if buffer.tell() != len(data)
            else f"schema id {schema_id} is not a record schema"
        )
        raise DeserializationError(
            reason, schema_id=schema_id, topic=topic, partition=partition, offset=offset
        )
    return record


class AvroSerializer:
    """Encodes records of catalog event types, resolving schema ids through a resolver.

    Usage::

        serializer = AvroSerializer(registry)
        value = await serializer.serialize(kematian, record)

    Args:
        resolver: where schema ids come from.
        auto_register: register the schema when serializing (``register``) instead of
            looking up an id registered beforehand (``lookup``). Off by default: Lintas
            registers schemas with ``lintas schemas register`` after its compatibility check.

    Note:
        The id of each (event type, subject) pair is remembered after the first call;
        concurrent first calls for the same pair may both ask the resolver, harmlessly.
    """

    __slots__ = ("_auto_register", "_ids", "_resolver")

    def __init__(self, resolver: SchemaResolver, *, auto_register: bool = False) -> None:
        self._resolver = resolver
        self._auto_register = auto_register
        self._ids: dict[tuple[str, str], int] = {}

    async def schema_id(self, event_type: EventType, *, subject: str | None = None) -> int:
        """Return the registry id of an event type's schema under its (or the given) subject."""
        subject = subject or event_type.subject
        key = (event_type.id, subject)
        schema_id = self._ids.get(key)
        if schema_id is None:
            if self._auto_register:
                schema_id = await self._resolver.register(subject, event_type.schema_str)
            else:
                schema_id = await self._resolver.lookup(subject, event_type.schema_str)
            self._ids[key] = schema_id
        return schema_id

    async def serialize(
        self, event_type: EventType, record: Mapping[str, Any], *, subject: str | None = None
    ) -> bytes:
        """Encode a record of ``event_type`` in the wire format.

        Args:
            event_type: the record's event type (its schema is the writer schema).
            record: the record, e.g. from :func:`lintas.schemas.models.to_avro_dict`.
            subject: registry subject when not ``event_type.subject`` (the canonical
                topic's ``lintas.canonical.<...>-value``, for instance).

        Raises:
            SerializationError: the record does not fit the schema.
            SchemaNotFound: the schema is not registered under the subject (lookup mode).
        """
        key = (event_type.id, subject or event_type.subject)
        schema_id = self._ids.get(key)
        if schema_id is None:
            schema_id = await self.schema_id(event_type, subject=subject)
        return encode(schema_id, event_type.parsed_schema, record)


class AvroDeserializer:
    """Decodes wire-format messages, fetching writer schemas by id through a resolver.

    Usage::

        deserializer = AvroDeserializer(registry)
        record = await deserializer.deserialize(msg.value, topic=msg.topic,
                                                partition=msg.partition, offset=msg.offset)

    Args:
        resolver: where writer schemas come from.
        reader: resolve every record into this event type's schema (consumers written for
            one major read records of every compatible writer version); ``None`` returns
            records as written.
    """

    __slots__ = ("_reader", "_reader_schemas", "_resolver", "_writers")

    def __init__(self, resolver: SchemaResolver, *, reader: EventType | None = None) -> None:
        self._resolver = resolver
        self._reader = reader
        self._writers: dict[int, dict[str, Any]] = {}
        # schema id -> reader schema to pass to fastavro: None when writer == reader, so the
        # common case skips schema resolution entirely.
        self._reader_schemas: dict[int, dict[str, Any] | None] = {}

    async def writer_schema(
        self,
        schema_id: int,
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> dict[str, Any]:
        """Return the parsed writer schema of an id, asking the resolver once.

        Raises:
            UnknownSchemaId: the resolver does not know the id.
            DeserializationError: the registry returned something that is not Avro.
        """
        parsed = self._writers.get(schema_id)
        if parsed is not None:
            return parsed
        try:
            schema = await self._resolver.get_schema(schema_id)
        except LookupError as exc:
            raise UnknownSchemaId(
                schema_id, topic=topic, partition=partition, offset=offset
            ) from exc
        try:
            parsed = parse_schema(schema)
        except ValueError as exc:
            raise DeserializationError(
                f"schema id {schema_id} from the registry is not valid Avro ({exc})",
                schema_id=schema_id,
                topic=topic,
                partition=partition,
                offset=offset,
            ) from exc
        self._writers[schema_id] = parsed
        if self._reader is not None:
            same = _canonical(parsed) == _canonical(self._reader.parsed_schema)
            self._reader_schemas[schema_id] = None if same else self._reader.parsed_schema
        else:
            self._reader_schemas[schema_id] = None
        return parsed

    async def deserialize(
        self,
        data: bytes,
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> dict[str, Any]:
        """Decode one message value.

        Args:
            data: the message value, header included.
            topic, partition, offset: the message's coordinates, carried into errors.

        Raises:
            DeserializationError: bad header, unknown schema id (:class:`UnknownSchemaId`),
                or a body that does not decode.
        """
        schema_id = parse_header(data, topic=topic, partition=partition, offset=offset)
        writer = self._writers.get(schema_id)
        if writer is None:
            writer = await self.writer_schema(
                schema_id, topic=topic, partition=partition, offset=offset
            )
        return decode(
            data,
            writer,
            self._reader_schemas[schema_id],
            topic=topic,
            partition=partition,
            offset=offset,
        )


def _canonical(parsed: dict[str, Any]) -> str:
    return str(fastavro.schema.to_parsing_canonical_form(parsed))


# --------------------------------------------------------------------------- error paths
# Only reached after fastavro refused a record: find the first value that does not fit,
# with its path in the record (not the schema), so the error can name the field.


def _explain(parsed_schema: dict[str, Any], record: Any, exc: Exception) -> SerializationError:
    named: dict[str, Any] = parsed_schema.get("__named_schemas", {})
    name = str(parsed_schema.get("name", "record")) if isinstance(parsed_schema, dict) else "?"
    found = _mismatch(parsed_schema, record, "", named)
    if found is None:
        return SerializationError(name, field=None, reason=f"{type(exc).__name__}: {exc}")
    path, schema, value, reason = found
    if reason is not None:
        return SerializationError(name, field=path, reason=reason)
    return SerializationError(
        name, field=path, expected=type_name(schema), actual=type(value).__name__
    )


_NO_VALUE = object()
_INT_RANGES = {
    "int": (-(2**31), 2**31 - 1, "32-bit Avro int"),
    "long": (-(2**63), 2**63 - 1, "64-bit Avro long"),
}


def _mismatch(
    schema: Any, value: Any, path: str, named: Mapping[str, Any]
) -> tuple[str, Any, Any, str | None] | None:
    """Return (path, expected schema, value, reason) of the first misfit, or None."""
    if isinstance(schema, str) and schema not in PRIMITIVES:
        schema = named.get(schema, schema)
    inner = nullable_branch(schema)
    if inner is not None:
        return None if value is None else _mismatch(inner, value, path, named)
    if isinstance(schema, list):
        for branch in schema:
            if _mismatch(branch, value, path, named) is None:
                return None
        records = [b for b in schema if _kind(b, named) == "record"]
        if isinstance(value, Mapping) and len(records) == 1:
            return _mismatch(records[0], value, path, named)
        return path, schema, value, None
    kind = _kind(schema, named)
    if kind == "record":
        if not isinstance(value, Mapping):
            return path, schema, value, None
        for spec in schema["fields"]:
            field_value = value.get(spec["name"], _NO_VALUE)
            field_path = f"{path}.{spec['name']}" if path else spec["name"]
            if field_value is _NO_VALUE:
                if "default" in spec:
                    continue
                return field_path, spec["type"], None, "the field is missing and has no default"
            found = _mismatch(spec["type"], field_value, field_path, named)
            if found is not None:
                return found
        return None
    if kind == "array":
        if not isinstance(value, list | tuple):
            return path, schema, value, None
        for index, item in enumerate(value):
            found = _mismatch(schema["items"], item, f"{path}[{index}]", named)
            if found is not None:
                return found
        return None
    if kind == "map":
        if not isinstance(value, Mapping):
            return path, schema, value, None
        for key, item in value.items():
            found = _mismatch(schema["values"], item, f"{path}.{key}", named)
            if found is not None:
                return found
        return None
    if kind == "enum":
        if value not in schema["symbols"]:
            return (
                path,
                schema,
                value,
                (
                    f"{value!r} is not one of the symbols of enum {schema['name']}: "
                    + ", ".join(schema["symbols"])
                ),
            )
        return None
    if isinstance(schema, dict) and schema.get("logicalType") == "decimal":
        if not isinstance(value, Decimal):
            return path, schema, value, None
        scale = int(schema.get("scale", 0))
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > scale:
            return path, schema, value, f"{value} has more than {scale} decimal places"
        return None
    if (
        isinstance(schema, str)
        and schema in _INT_RANGES
        and isinstance(value, int)
        and not isinstance(value, bool)
    ):
        low, high, what = _INT_RANGES[schema]
        if not low <= value <= high:
            return path, schema, value, f"{value} is outside the {what} range"
        return None
    try:
        fits = _fastavro_validate(value, schema, raise_errors=False)
    except Exception:  # a leaf fastavro cannot even check
        fits = False
    return None if fits else (path, schema, value, None)


def _kind(schema: Any, named: Mapping[str, Any]) -> str | None:
    if isinstance(schema, str):
        schema = named.get(schema, schema)
    if isinstance(schema, dict):
        kind = schema.get("type")
        if kind in NAMED or kind in ("array", "map"):
            return "record" if kind == "error" else str(kind)
    return None

"""Canonical records in, raw and typed rows out: decoding with each writer schema once.

Each canonical topic carries one event type; its records name their writer schema by id
(Confluent framing). The first record of an id fetches the schema from the registry,
parses it and derives the typed table it needs (:func:`~lintas.consumers.store.shape_of`);
later records only decode.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from aiokafka import ConsumerRecord

from lintas.consumers.store.ddl import TableShape, shape_of
from lintas.consumers.store.rows import PAYLOAD_FIELD, raw_row, typed_columns, typed_row
from lintas.schemas import Catalog, SchemaResolver, UnknownSchemaId, decode, parse_header
from lintas.schemas import parse_schema as parse_avro

__all__ = ["CANONICAL_PREFIX", "CanonicalConverter", "StoredEvent", "Writer", "canonical_pattern"]

CANONICAL_PREFIX = "lintas.canonical."
_EVENT_TYPE = r"[a-z][a-z0-9]*\.[a-z][a-z0-9_]*\.v[0-9]+"

R = TypeVar("R")
Retry = Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]


def canonical_pattern(topic_prefix: str) -> str:
    """The regular expression of the canonical topics under ``topic_prefix``."""
    return "^" + re.escape(topic_prefix + CANONICAL_PREFIX) + _EVENT_TYPE + "$"


@dataclass(frozen=True, slots=True)
class Writer:
    """What one writer schema id means for the store.

    Attributes:
        schema_id: the registry id.
        parsed: the schema parsed for decoding.
        shape: the typed table it needs.
        columns: the typed columns its rows fill, in row order.
        nik_paths: payload paths tagged ``"pii": "nik"`` (the raw table's ``niks``).
    """

    schema_id: int
    parsed: dict[str, Any]
    shape: TableShape
    columns: tuple[str, ...]
    nik_paths: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One canonical record as rows: its raw row and its typed row, its writer, and the
    record itself (dead-lettered as it was read if the database refuses its rows)."""

    writer: Writer
    raw: tuple[Any, ...]
    typed: tuple[Any, ...]
    record: ConsumerRecord


def _uuids_as_text(schema: Any) -> Any:
    """``schema`` without the ``uuid`` logical type: such values decode as their text.

    asyncpg stores text in a ``uuid`` column and JSON writes it as is, while building a
    :class:`uuid.UUID` for each value costs about as much as decoding the whole record.
    """
    if isinstance(schema, dict):
        if schema.get("logicalType") == "uuid":
            return {k: v for k, v in schema.items() if k != "logicalType"}
        return {k: _uuids_as_text(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_uuids_as_text(v) for v in schema]
    return schema


class CanonicalConverter:
    """Decodes canonical records into rows, learning each writer schema once.

    Args:
        registry: where writer schemas are fetched by id.
        topic_prefix: prefix of the canonical topics (empty in production).
        catalog: event types known locally; their ``pii`` paths and subject field are
            merged with what the writer schema says.
        retry: how to retry a retriable registry failure (the sink's backoff).
    """

    def __init__(
        self,
        registry: SchemaResolver,
        *,
        topic_prefix: str,
        catalog: Catalog | None,
        retry: Retry,
    ) -> None:
        self._registry = registry
        self._prefix = topic_prefix + CANONICAL_PREFIX
        self._catalog = catalog
        self._retry = retry
        self._writers: dict[tuple[str, int], Writer] = {}

    def event_type_of(self, topic: str) -> str:
        """The event type id of a canonical topic (``dukcapil.kematian_dicatat.v1``)."""
        return topic[len(self._prefix) :] if topic.startswith(self._prefix) else topic

    async def convert(self, record: ConsumerRecord) -> StoredEvent:
        """The rows of one canonical record.

        Raises:
            DeserializationError: not Confluent-framed Avro, unknown schema id
                (:class:`UnknownSchemaId`), or a body that does not decode.
            CanonicalRecordInvalid: the envelope lacks what the raw table needs.
            SchemaConflict: the writer schema has no payload record (the type must stop).
        """
        where = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
        schema_id = parse_header(record.value, **where)
        writer = self._writers.get((record.topic, schema_id))
        if writer is None:
            writer = await self._learn(record.topic, schema_id, where)
        decoded = decode(record.value, writer.parsed, **where)
        raw = raw_row(
            decoded,
            nik_paths=writer.nik_paths,
            schema_id=schema_id,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        typed = typed_row(raw, decoded[PAYLOAD_FIELD], writer.shape)
        return StoredEvent(writer, raw, typed, record)

    async def _learn(self, topic: str, schema_id: int, where: Mapping[str, Any]) -> Writer:
        async def fetch() -> Mapping[str, Any] | str:
            try:
                return await self._registry.get_schema(schema_id)
            except LookupError as exc:
                raise UnknownSchemaId(schema_id, **where) from exc

        text = await self._retry(f"fetching schema {schema_id}", fetch)
        schema = orjson.loads(text) if isinstance(text, str) else dict(text)
        event_type_id = self.event_type_of(topic)
        known = None
        if self._catalog is not None and event_type_id in self._catalog:
            known = self._catalog.get(event_type_id)
        shape = shape_of(
            event_type_id,
            schema,
            payload_field=PAYLOAD_FIELD,
            extra_pii=known.pii_fields if known else None,
            subject_field=known.subject_field if known else None,
        )
        writer = Writer(
            schema_id=schema_id,
            parsed=parse_avro(_uuids_as_text(schema)),
            shape=shape,
            columns=typed_columns(shape),
            nik_paths=tuple(p for p, kind in shape.pii_paths.items() if kind == "nik"),
        )
        self._writers[(topic, schema_id)] = writer
        return writer

"""Typed tables derived from Avro schemas, and how a table follows a new schema version.

One table per event type, ``store.<opd>_<event>_v<major>``: the envelope columns
``event_id`` (primary key), ``event_time`` and ``ingest_time``, then one column per top-level
field of the payload, in schema order. Types (the spelling ``format_type`` prints, so a table
read back from the catalog compares as text)::

    string                              text
    string + uuid                       uuid
    boolean                             boolean
    int, long                           bigint
    float, double                       double precision
    bytes, fixed                        bytea
    bytes/fixed + decimal(p, s)         numeric(p,s)
    int + date                          date
    int + time-millis, long + time-*    time without time zone
    long + timestamp-millis/micros      timestamp with time zone
    long + local-timestamp-*            timestamp without time zone
    enum                                text, with a CHECK listing the symbols
    record, array, map, other unions    jsonb
    ["null", T]                         as T

Every payload column is nullable: a field added in a later version is absent from earlier
records and one removed later is absent from newer ones; the contract, not the table, says
what is required. ``int`` and ``float`` take the wider type from the start so that Avro's
compatible promotions (``int`` -> ``long``, ``float`` -> ``double``) keep the same column.

A new writer schema is compared with the table (:func:`plan_evolution`): new fields become
new nullable columns, new enum symbols widen the CHECK, removed fields keep their column
(NULL from then on); any other change of a column's type is a :class:`SchemaConflict`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from lintas.schemas._avro import NAMED, PRIMITIVES, full_name, namespace_of, nullable_branch

from .exceptions import SchemaConflict

__all__ = [
    "ENVELOPE_COLUMNS",
    "STORE_SCHEMA",
    "Column",
    "Evolution",
    "ExistingColumn",
    "TableShape",
    "ValueKind",
    "alter_table_sql",
    "create_table_sql",
    "plan_evolution",
    "quote_ident",
    "quote_literal",
    "shape_of",
    "table_name",
]

STORE_SCHEMA = "store"
ENVELOPE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_id", "text"),
    ("event_time", "timestamp with time zone"),
    ("ingest_time", "timestamp with time zone"),
)
_RESERVED = frozenset(name for name, _ in ENVELOPE_COLUMNS)
# PostgreSQL truncates longer identifiers silently, which could merge two columns.
_MAX_IDENTIFIER_BYTES = 63
_EVENT_TYPE_ID = re.compile(r"(?P<opd>[a-z][a-z0-9]*)\.(?P<event>[a-z][a-z0-9_]*)\.v(?P<major>\d+)")

_PRIMITIVE_TYPES = {
    "string": "text",
    "boolean": "boolean",
    "int": "bigint",
    "long": "bigint",
    "float": "double precision",
    "double": "double precision",
    "bytes": "bytea",
}
_LOGICAL_TYPES = {
    ("string", "uuid"): "uuid",
    ("int", "date"): "date",
    ("int", "time-millis"): "time without time zone",
    ("long", "time-micros"): "time without time zone",
    ("long", "timestamp-millis"): "timestamp with time zone",
    ("long", "timestamp-micros"): "timestamp with time zone",
    ("long", "local-timestamp-millis"): "timestamp without time zone",
    ("long", "local-timestamp-micros"): "timestamp without time zone",
}


class ValueKind(enum.Enum):
    """How a decoded Avro value becomes a column value."""

    PLAIN = "plain"
    """As decoded: asyncpg encodes ``str``, ``int``, ``Decimal``, ``date``, ``UUID``... itself."""
    JSON = "json"
    """Encoded as JSON, for a ``jsonb`` column."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Column:
    """One payload column of a typed table.

    Attributes:
        name: the field's name, also the column's.
        sql_type: PostgreSQL type as ``format_type`` spells it (``numeric(18,2)``).
        kind: how values are converted.
        symbols: an enum's symbols (the CHECK), empty for other types.
        pii: the field's own personal-data kind (``nik``), or ``None``.
        nested_pii: (path below the column, kind) of personal data inside a ``jsonb``
            column, e.g. ``("[].nik", "nik")`` for ``anggota[].nik``.
        doc: the field's ``doc``, written as the column's comment.
    """

    name: str
    sql_type: str
    kind: ValueKind = ValueKind.PLAIN
    symbols: tuple[str, ...] = ()
    pii: str | None = None
    nested_pii: tuple[tuple[str, str], ...] = ()
    doc: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TableShape:
    """The typed table one writer schema needs.

    Attributes:
        event_type: event type id (``dukcapil.kematian_dicatat.v1``).
        table: table name in the ``store`` schema.
        columns: payload columns in schema order.
        subject_field: the payload field the event's subject is (``nik``), when known.
        doc: the event type's ``doc``, written as the table's comment.
    """

    event_type: str
    table: str
    columns: tuple[Column, ...]
    subject_field: str | None = None
    doc: str = ""
    _by_name: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {c.name: c for c in self.columns})

    @property
    def qualified(self) -> str:
        """``store."<table>"``."""
        return f"{STORE_SCHEMA}.{quote_ident(self.table)}"

    def column(self, name: str) -> Column | None:
        return self._by_name.get(name)

    @property
    def pii_paths(self) -> dict[str, str]:
        """Every personal-data path of the payload (``anggota[].nik``) with its kind."""
        paths: dict[str, str] = {}
        for col in self.columns:
            if col.pii:
                paths[col.name] = col.pii
            for below, kind in col.nested_pii:
                paths[col.name + below] = kind
        return paths

    @property
    def subject_pii(self) -> str | None:
        """The personal-data kind of the subject (``nik`` for citizen events), or ``None``."""
        col = self.column(self.subject_field) if self.subject_field else None
        return col.pii if col else None


@dataclass(frozen=True, slots=True)
class ExistingColumn:
    """A column of a table as the database has it."""

    name: str
    sql_type: str
    symbols: frozenset[str] | None = None
    """Symbols its CHECK allows, or ``None`` when it has no enum CHECK."""


@dataclass(frozen=True, slots=True)
class Evolution:
    """What a table needs to accept a new writer schema.

    Attributes:
        add: columns to add (nullable).
        checks: (column, symbols) whose enum CHECK is replaced to allow these symbols;
            an empty tuple drops the CHECK (an enum became a string).
    """

    add: tuple[Column, ...] = ()
    checks: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.add or self.checks)


def quote_ident(name: str) -> str:
    """A PostgreSQL identifier, always quoted (Avro names may be mixed case)."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """A PostgreSQL string literal (``standard_conforming_strings`` is on since 9.1)."""
    return "'" + text.replace("'", "''") + "'"


def table_name(event_type_id: str) -> str:
    """``dukcapil.kematian_dicatat.v1`` -> ``dukcapil_kematian_dicatat_v1``.

    OPD codes have no underscore, so the name maps back to one event type only.

    Raises:
        SchemaConflict: the id is not ``<opd>.<event>.v<N>`` or the name is too long.
    """
    match = _EVENT_TYPE_ID.fullmatch(event_type_id)
    if match is None:
        raise SchemaConflict(event_type_id, "?", None, "not an event type id <opd>.<event>.v<N>")
    name = f"{match['opd']}_{match['event']}_v{match['major']}"
    if len(name) > _MAX_IDENTIFIER_BYTES:
        raise SchemaConflict(event_type_id, name, None, "the table name exceeds 63 bytes")
    return name


# --------------------------------------------------------------------------- shapes


class _Walker:
    """Walks a raw schema in document order, learning named types as Avro defines them."""

    def __init__(self) -> None:
        self.named: dict[str, dict[str, Any]] = {}

    def resolve(self, schema: Any, namespace: str | None) -> tuple[Any, str | None]:
        if isinstance(schema, str) and schema not in PRIMITIVES:
            for candidate in (full_name(schema, namespace), schema):
                if candidate in self.named:
                    defined_in = candidate.rsplit(".", 1)[0] if "." in candidate else None
                    return self.named[candidate], defined_in
            raise KeyError(schema)
        if isinstance(schema, dict) and schema.get("type") in NAMED:
            self.named.setdefault(full_name(schema["name"], namespace), schema)
            return schema, namespace_of(schema, namespace)
        return schema, namespace

    def pii(self, schema: Any, namespace: str | None, path: str) -> Iterator[tuple[str, str]]:
        """(path, kind) of the tagged fields below ``schema`` (which also learns its names)."""
        inner = nullable_branch(schema)
        schema, namespace = self.resolve(inner if inner is not None else schema, namespace)
        if isinstance(schema, list):
            for branch in schema:
                yield from self.pii(branch, namespace, path)
        elif isinstance(schema, dict):
            kind = schema.get("type")
            if kind in ("record", "error"):
                for spec in schema.get("fields", ()):
                    sub = f"{path}.{spec['name']}" if path else spec["name"]
                    if isinstance(spec.get("pii"), str):
                        yield sub, spec["pii"]
                    yield from self.pii(spec["type"], namespace, sub)
            elif kind == "array":
                yield from self.pii(schema.get("items"), namespace, path + "[]")
            elif kind == "map":
                yield from self.pii(schema.get("values"), namespace, path + "{}")
            elif isinstance(kind, dict | list):
                yield from self.pii(kind, namespace, path)


def _column_type(schema: Any) -> tuple[str, ValueKind, tuple[str, ...]]:
    """(sql type, value kind, enum symbols) of a resolved, non-null field schema."""
    if isinstance(schema, list):  # a union of several types: kept as JSON
        return "jsonb", ValueKind.JSON, ()
    if isinstance(schema, str):
        return _PRIMITIVE_TYPES.get(schema, "jsonb"), ValueKind.PLAIN, ()
    kind = schema.get("type")
    if isinstance(kind, dict | list):
        return _column_type(kind)
    if kind in ("record", "error", "array", "map"):
        return "jsonb", ValueKind.JSON, ()
    if kind == "enum":
        return "text", ValueKind.PLAIN, tuple(schema["symbols"])
    logical = schema.get("logicalType")
    if logical == "decimal" and kind in ("bytes", "fixed"):
        precision, scale = int(schema["precision"]), int(schema.get("scale", 0))
        return f"numeric({precision},{scale})", ValueKind.PLAIN, ()
    if kind == "fixed":
        return "bytea", ValueKind.PLAIN, ()
    mapped = _LOGICAL_TYPES.get((kind, logical)) if logical else None
    if mapped is None:  # an unknown logical type reads as its underlying type (Avro's rule)
        mapped = _PRIMITIVE_TYPES.get(kind, "jsonb")
    return mapped, ValueKind.PLAIN, ()


def shape_of(
    event_type_id: str,
    canonical_schema: Mapping[str, Any],
    *,
    payload_field: str = "payload",
    extra_pii: Mapping[str, str] | None = None,
    subject_field: str | None = None,
) -> TableShape:
    """The typed table a canonical writer schema needs.

    Args:
        event_type_id: the event type (names the table).
        canonical_schema: the writer schema of the canonical record, as JSON (a dict): the
            envelope fields and the event as ``payload_field``. Custom attributes (``pii``,
            ``doc``, ``subject_field``) are read from it.
        payload_field: the envelope field holding the event.
        extra_pii: personal-data paths known from elsewhere (the catalog's
            :attr:`~lintas.schemas.EventType.pii_fields`); merged with the schema's tags.
        subject_field: the payload field the subject is; defaults to the payload record's
            ``subject_field`` attribute.

    Raises:
        SchemaConflict: the schema has no record ``payload_field``.
    """
    table = table_name(event_type_id)
    walker = _Walker()
    namespace = namespace_of(dict(canonical_schema), None)
    walker.resolve(dict(canonical_schema), None)
    payload: dict[str, Any] | None = None
    payload_ns = namespace
    for spec in canonical_schema.get("fields", ()):
        if spec.get("name") == payload_field:
            resolved, payload_ns = walker.resolve(spec["type"], namespace)
            if isinstance(resolved, dict) and resolved.get("type") == "record":
                payload = resolved
            break
        list(walker.pii(spec["type"], namespace, ""))  # learn the named types it defines
    if payload is None:
        raise SchemaConflict(event_type_id, table, payload_field, "no payload record found")
    pii = dict(walker.pii(payload, payload_ns, ""))
    pii.update(extra_pii or {})
    inner_ns = namespace_of(payload, payload_ns)
    columns = []
    for spec in payload["fields"]:
        name = spec["name"]
        inner = nullable_branch(spec["type"])
        resolved, _ = walker.resolve(inner if inner is not None else spec["type"], inner_ns)
        sql_type, kind, symbols = _column_type(resolved)
        nested = tuple(
            sorted(
                (path[len(name) :], k)
                for path, k in pii.items()
                if path.startswith(name) and path[len(name) : len(name) + 1] in (".", "[", "{")
            )
        )
        columns.append(
            Column(
                name=name,
                sql_type=sql_type,
                kind=kind,
                symbols=symbols,
                pii=pii.get(name),
                nested_pii=nested,
                doc=str(spec.get("doc", "")),
            )
        )
    subject = subject_field or payload.get("subject_field")
    return TableShape(
        event_type=event_type_id,
        table=table,
        columns=tuple(columns),
        subject_field=subject if isinstance(subject, str) else None,
        doc=str(payload.get("doc", "")),
    )


# --------------------------------------------------------------------------- evolution


def plan_evolution(shape: TableShape, existing: Mapping[str, ExistingColumn]) -> Evolution:
    """What the table ``existing`` needs to accept rows of ``shape``.

    Args:
        shape: the typed table the new writer schema needs.
        existing: the table's columns by name (envelope columns included), as read from
            the database; empty when the table does not exist yet.

    Raises:
        SchemaConflict: a column would change type, a field is named like an envelope
            column, or a field name exceeds PostgreSQL's 63 bytes.
    """
    add: list[Column] = []
    checks: list[tuple[str, tuple[str, ...]]] = []
    qualified = f"{STORE_SCHEMA}.{shape.table}"
    for col in shape.columns:
        if col.name in _RESERVED:
            raise SchemaConflict(
                shape.event_type, qualified, col.name, "the field is named like an envelope column"
            )
        if len(col.name.encode()) > _MAX_IDENTIFIER_BYTES:
            raise SchemaConflict(
                shape.event_type, qualified, col.name, "the field name exceeds 63 bytes"
            )
        old = existing.get(col.name)
        if old is None:
            add.append(col)
        elif old.sql_type != col.sql_type:
            raise SchemaConflict(
                shape.event_type,
                qualified,
                col.name,
                f"the column is {old.sql_type}, the new schema needs {col.sql_type}",
            )
        elif col.symbols and old.symbols is not None and not old.symbols.issuperset(col.symbols):
            # Keep the symbols older rows may hold: a check only ever widens.
            union = tuple(sorted(old.symbols)) + tuple(
                s for s in col.symbols if s not in old.symbols
            )
            checks.append((col.name, union))
        elif not col.symbols and old.symbols is not None and col.sql_type == "text":
            checks.append((col.name, ()))
    return Evolution(add=tuple(add), checks=tuple(checks))


def _check_sql(column: str, symbols: tuple[str, ...]) -> str:
    values = ", ".join(quote_literal(s) for s in symbols)
    return (
        f"CONSTRAINT {quote_ident(column + '_symbols')} CHECK ({quote_ident(column)} IN ({values}))"
    )


def _comment_sql(shape: TableShape, column: Column) -> str:
    return f"COMMENT ON COLUMN {shape.qualified}.{quote_ident(column.name)} IS " + quote_literal(
        column.doc + (f" [pii: {column.pii}]" if column.pii else "")
    )


def create_table_sql(shape: TableShape) -> list[str]:
    """Statements that create the typed table of ``shape`` (a no-op when it exists)."""
    lines = [
        "event_id text PRIMARY KEY",
        "event_time timestamp with time zone",
        "ingest_time timestamp with time zone",
    ]
    lines += [f"{quote_ident(c.name)} {c.sql_type}" for c in shape.columns]
    lines += [_check_sql(c.name, c.symbols) for c in shape.columns if c.symbols]
    body = ",\n    ".join(lines)
    statements = [f"CREATE TABLE IF NOT EXISTS {shape.qualified} (\n    {body}\n)"]
    doc = f"Typed rows of {shape.event_type} (one per event id). {shape.doc}".strip()
    statements.append(f"COMMENT ON TABLE {shape.qualified} IS {quote_literal(doc)}")
    statements += [_comment_sql(shape, c) for c in shape.columns if c.doc or c.pii]
    return statements


def alter_table_sql(shape: TableShape, evolution: Evolution) -> list[str]:
    """Statements that apply ``evolution`` to the typed table of ``shape``."""
    statements: list[str] = []
    for col in evolution.add:
        statements.append(
            f"ALTER TABLE {shape.qualified} ADD COLUMN IF NOT EXISTS "
            f"{quote_ident(col.name)} {col.sql_type}"
        )
        if col.symbols:
            # NOT VALID: no row can hold a value yet, so there is nothing to scan.
            statements.append(
                f"ALTER TABLE {shape.qualified} ADD {_check_sql(col.name, col.symbols)} NOT VALID"
            )
        if col.doc or col.pii:
            statements.append(_comment_sql(shape, col))
    for name, symbols in evolution.checks:
        statements.append(
            f"ALTER TABLE {shape.qualified} DROP CONSTRAINT IF EXISTS "
            f"{quote_ident(name + '_symbols')}"
        )
        if symbols:
            # NOT VALID: the new set contains the old one, so existing rows satisfy it.
            statements.append(
                f"ALTER TABLE {shape.qualified} ADD {_check_sql(name, symbols)} NOT VALID"
            )
    return statements

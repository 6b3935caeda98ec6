"""Mapping files: which event of the catalog a change of a legacy row becomes.

A mapping file (YAML) describes one table::

    table: ta_setoran                 # [schema.]table as the source names it
    key: [no_sspd]                    # primary key columns (default: the table's own)
    events:
      - type: bapenda.pajak_dibayar.v1
        on: [insert]                  # insert, update, delete; snapshot rows are inserts
        when: {status_bayar: "1"}     # optional: column -> value or [values], as text
        fields:                       # event field -> column, or a spec
          ntpd: no_ntpd
          npwpd: {column: npwpd, transform: [strip, digits]}
          jenis_pajak: {column: kd_pajak, transform: {map: {"11": PBJT_PERHOTELAN}}}
          kode_wilayah: {template: "{kd_prov}{kd_kab}{kd_kec}{kd_kel}", transform: kode_wilayah}
          bank_persepsi: {value: null}
      - type: ...
        on: [update]
        changed: [status]             # only when one of these columns changed (updates)

Every matching rule makes one event. Column names match case-insensitively. The file is
checked when the capture starts: an unknown event type, field, transform or column (the
columns are checked against the database), or a required field left unmapped, refuses the
start with the file, the line and the reason.

Values are converted to what the field's Avro type needs where that is unambiguous: a
naive ``DATETIME`` becomes an aware time in the source's ``timezone`` (legacy apps store
local time, WIB by default), numbers become text for string fields, a datetime becomes a
date for date fields. Anything else is the mapping's job (transforms).
"""

from __future__ import annotations

import datetime as dt
import decimal
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lintas.schemas import EventModel, EventType, UnknownEventType, load_catalog, model_for

from ._yaml import Located, load_located, raise_validation
from .exceptions import MappingInvalid
from .transforms import Transform, TransformFailed, build_transform, localize
from .types import Change, Op

__all__ = [
    "EventRule",
    "FieldFailed",
    "TableMapping",
    "load_mapping",
    "parse_mapping",
]

_UNSET: Any = object()


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(_Spec):
    column: str | None = None
    value: Any = _UNSET
    template: str | None = None
    transform: Any = None

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        given = [self.column is not None, self.value is not _UNSET, self.template is not None]
        if sum(given) != 1:
            raise ValueError("a field takes exactly one of column, value or template")
        return self


class RuleSpec(_Spec):
    type: str
    on: Annotated[list[Literal["insert", "update", "delete"]], Field(min_length=1)]
    when: dict[str, Any] = {}
    changed: list[str] = []
    fields: Annotated[dict[str, str | FieldSpec], Field(min_length=1)]


class MappingSpec(_Spec):
    table: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")]
    key: list[str] | None = None
    events: Annotated[list[RuleSpec], Field(min_length=1)]


class FieldFailed(ValueError):
    """A field of an event could not be built from the row."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


def _field_kind(avro_type: Any) -> str:
    """What a field needs: ``string``, ``timestamp``, ``date``, ``decimal``, ``int`` ..."""
    if isinstance(avro_type, list):
        branches = [t for t in avro_type if t != "null"]
        return _field_kind(branches[0]) if len(branches) == 1 else "union"
    if isinstance(avro_type, dict):
        logical = avro_type.get("logicalType")
        if logical in ("timestamp-millis", "timestamp-micros"):
            return "timestamp"
        if logical in ("date", "decimal", "uuid"):
            return str(logical)
        return str(avro_type.get("type"))
    return str(avro_type)


def _coerce(kind: str, value: Any, zone: ZoneInfo) -> Any:
    """The unambiguous conversions from database values to a field's Avro type."""
    if value is None:
        return None
    if kind == "timestamp" and isinstance(value, dt.datetime):
        return localize(value, zone)
    if kind == "date" and isinstance(value, dt.datetime):
        return localize(value, zone).astimezone(zone).date()
    if kind in ("string", "enum", "uuid"):
        if isinstance(value, bytes | bytearray):
            return bytes(value).decode("utf-8", errors="replace")
        if isinstance(value, int | decimal.Decimal) and not isinstance(value, bool):
            return str(value)
    if kind == "decimal" and isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            return decimal.Decimal(str(value))
        except decimal.InvalidOperation:
            return value
    if kind in ("int", "long") and isinstance(value, decimal.Decimal) and value == int(value):
        return int(value)
    return value


Getter = Callable[[Mapping[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    kind: str
    get: Getter
    transforms: tuple[Transform, ...]


@dataclass(frozen=True, kw_only=True)
class EventRule:
    """One compiled ``events`` entry: when it applies and how it builds its event.

    Attributes:
        event_type: the catalog entry.
        model: its pydantic model.
        ops: the operations it applies to.
        when: column -> accepted values (as text).
        changed: columns of which one must have changed (updates with a before image).
    """

    event_type: EventType
    model: type[EventModel]
    ops: frozenset[Op]
    when: Mapping[str, frozenset[str]]
    changed: tuple[str, ...]
    fields: tuple[_Field, ...]
    zone: ZoneInfo

    def applies(self, change: Change) -> bool:
        op = Op.INSERT if change.op is Op.SNAPSHOT else change.op
        if op not in self.ops:
            return False
        for column, accepted in self.when.items():
            value = change.row.get(column)
            if ("" if value is None else str(value)) not in accepted:
                return False
        if self.changed and change.op is Op.UPDATE and change.before is not None:
            return any(change.before.get(c) != change.row.get(c) for c in self.changed)
        return True

    def build(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The event's fields from ``row`` (column names lower-case).

        Raises:
            FieldFailed: a transform rejected a value.
        """
        data: dict[str, Any] = {}
        for f in self.fields:
            try:
                value = f.get(row)
                for transform in f.transforms:
                    value = transform(value)
            except TransformFailed as exc:
                raise FieldFailed(f.name, str(exc)) from exc
            data[f.name] = _coerce(f.kind, value, self.zone)
        return data


@dataclass(frozen=True, kw_only=True)
class TableMapping:
    """A compiled mapping file.

    Attributes:
        table: the source table (``ta_setoran`` or ``public.pegawai``).
        key: the primary key columns when the file names them (lower-case).
        rules: the event rules, in file order.
        columns: every column the mapping reads -> the line that names it.
        path: the mapping file, for error messages.
    """

    table: str
    key: tuple[str, ...] | None
    rules: tuple[EventRule, ...]
    columns: Mapping[str, int]
    path: Path
    key_line: int | None = None
    event_types: tuple[EventType, ...] = field(default=())

    def rules_for(self, change: Change) -> list[EventRule]:
        return [rule for rule in self.rules if rule.applies(change)]

    @property
    def ops(self) -> frozenset[Op]:
        out: set[Op] = set()
        for rule in self.rules:
            out |= rule.ops
        return frozenset(out)

    @property
    def needs_before_image(self) -> bool:
        """Whether a rule reads the row before an update or of a delete (all columns)."""
        return any(rule.changed or Op.DELETE in rule.ops for rule in self.rules)

    def check_columns(self, available: Iterable[str], *, key: Sequence[str] | None = None) -> None:
        """Refuse columns the table does not have (names lower-case).

        Raises:
            MappingInvalid: with the line of the first unknown column.
        """
        have = {c.lower() for c in available}
        for column, line in self.columns.items():
            if column not in have:
                raise MappingInvalid(
                    self.path,
                    line,
                    f"table {self.table} has no column {column!r} "
                    f"(it has: {', '.join(sorted(have)) or 'no columns'})",
                )
        if self.key is None and not key:
            raise MappingInvalid(
                self.path,
                self.key_line,
                f"table {self.table} has no primary key: name its key columns with `key:`",
            )


def load_mapping(path: Path, *, zone: ZoneInfo) -> TableMapping:
    """Read and compile a mapping file.

    Raises:
        ConfigInvalid: not valid YAML.
        MappingInvalid: an unknown event type, field or transform, a required field left
            unmapped, a template naming no column, with the line.
    """
    return parse_mapping(load_located(path), zone=zone)


def parse_mapping(doc: Located, *, zone: ZoneInfo) -> TableMapping:
    """Compile a mapping already read (a file, or the inline part of a source file)."""
    try:
        spec = MappingSpec.model_validate(doc.data if doc.data is not None else {})
    except ValidationError as exc:
        raise_validation(doc, exc, what="mapping", error=MappingInvalid)
    catalog = load_catalog()
    columns: dict[str, int] = {}

    def use(column: str, where: Sequence[str | int]) -> str:
        name = column.strip().lower()
        columns.setdefault(name, doc.line(where) or 0)
        return name

    key = tuple(use(c, ("key", i)) for i, c in enumerate(spec.key)) if spec.key else None
    rules: list[EventRule] = []
    for i, rule in enumerate(spec.events):
        at: tuple[str | int, ...] = ("events", i)
        try:
            event_type = catalog.get(rule.type)
        except UnknownEventType as exc:
            raise MappingInvalid(
                doc.path, doc.line((*at, "type")), f"{exc.message} {exc.hint or ''}".strip()
            ) from exc
        rules.append(_compile_rule(doc, at, rule, event_type, use, zone))
    return TableMapping(
        table=spec.table,
        key=key,
        rules=tuple(rules),
        columns=columns,
        path=doc.path,
        key_line=doc.line(("table",)),
        event_types=tuple(dict.fromkeys(r.event_type for r in rules)),
    )


def _compile_rule(
    doc: Located,
    at: tuple[str | int, ...],
    rule: RuleSpec,
    event_type: EventType,
    use: Callable[[str, Sequence[str | int]], str],
    zone: ZoneInfo,
) -> EventRule:
    schema_fields = {f["name"]: f for f in event_type.schema["fields"]}
    fields: list[_Field] = []
    for name, raw in rule.fields.items():
        where = (*at, "fields", name)
        if name not in schema_fields:
            raise MappingInvalid(
                doc.path,
                doc.line(where),
                f"event type {event_type.id} has no field {name!r} "
                f"(its fields: {', '.join(schema_fields)})",
            )
        spec = FieldSpec(column=raw) if isinstance(raw, str) else raw
        get = _getter(doc, where, spec, use)
        transforms = spec.transform
        if transforms is None:
            transforms = []
        elif not isinstance(transforms, list):
            transforms = [transforms]
        built = []
        for j, t in enumerate(transforms):
            try:
                built.append(build_transform(t, zone))
            except ValueError as exc:
                line = doc.line((*where, "transform", j)) or doc.line((*where, "transform"))
                raise MappingInvalid(doc.path, line, f"field {name!r}: {exc}") from exc
        fields.append(_Field(name, _field_kind(schema_fields[name]["type"]), get, tuple(built)))
    missing = [n for n, f in schema_fields.items() if "default" not in f and n not in rule.fields]
    if missing:
        raise MappingInvalid(
            doc.path,
            doc.line((*at, "fields")),
            f"event type {event_type.id} needs field(s) {', '.join(missing)}, "
            "which the mapping does not fill",
        )
    when = {
        use(column, (*at, "when", column)): frozenset(
            str(v) for v in (value if isinstance(value, list) else [value])
        )
        for column, value in rule.when.items()
    }
    changed = tuple(use(c, (*at, "changed", k)) for k, c in enumerate(rule.changed))
    return EventRule(
        event_type=event_type,
        model=model_for(event_type),
        ops=frozenset(Op(o) for o in rule.on),
        when=when,
        changed=changed,
        fields=tuple(fields),
        zone=zone,
    )


def _getter(
    doc: Located,
    where: tuple[str | int, ...],
    spec: FieldSpec,
    use: Callable[[str, Sequence[str | int]], str],
) -> Getter:
    if spec.column is not None:
        column = use(spec.column, where)
        return lambda row: row.get(column)
    if spec.template is not None:
        template = spec.template
        try:
            names = [n for _, n, _, _ in string.Formatter().parse(template) if n is not None]
        except ValueError as exc:
            raise MappingInvalid(doc.path, doc.line(where), f"template: {exc}") from exc
        if not names or any(not n for n in names):
            raise MappingInvalid(
                doc.path, doc.line(where), "a template names its columns: '{kd_prov}.{kd_kab}'"
            )
        lowered = template
        for n in names:
            lowered = lowered.replace("{" + n + "}", "{" + n.lower() + "}")
            use(n, where)

        def fill(row: Mapping[str, Any]) -> Any:
            values = {n.lower(): row.get(n.lower()) for n in names}
            if any(v is None for v in values.values()):
                return None
            return lowered.format(**{k: str(v).strip() for k, v in values.items()})

        return fill
    constant = spec.value
    return lambda row: constant

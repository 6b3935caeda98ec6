"""Field paths into decoded records (``anggota[].nik``) and the schema fields they name.

A path is dotted field names; a ``[]`` suffix walks every item of an array. Paths are the
same as :attr:`lintas.schemas.EventType.pii_fields` uses, and violations name the concrete
item (``anggota[1].nik``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from lintas.schemas import EventType

__all__ = ["FieldPath", "SchemaField", "schema_fields"]

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


class FieldPath:
    """A compiled path: ``FieldPath("anggota[].nik")``."""

    __slots__ = ("_parts", "leaf", "parent", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        parent, _, leaf = text.rpartition(".")
        self.parent = parent
        """The path of the record holding the field (``anggota[]``; empty at the top)."""
        self.leaf = leaf
        """The field's own name (``nik``)."""
        self._parts = parent.split(".") if parent else []

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldPath) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"FieldPath({self.text!r})"

    def records(self, record: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """Each record that holds the field, with the concrete path prefix (``anggota[1].``)."""
        if not self._parts:  # a top-level field: the common case, kept cheap
            return iter((("", record),))
        return _walk(record, self._parts, "")

    def values(self, record: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
        """Each (concrete path, value) the path names; absent fields read as ``None``."""
        leaf = self.leaf
        if not self._parts:
            return iter(((leaf, record.get(leaf)),))
        return ((prefix + leaf, holder.get(leaf)) for prefix, holder in self.records(record))


def _walk(value: Any, parts: list[str], prefix: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if not parts:
        if isinstance(value, Mapping):
            yield prefix, value
        return
    head, rest = parts[0], parts[1:]
    if not isinstance(value, Mapping):
        return
    if head.endswith("[]"):
        items = value.get(head[:-2])
        if isinstance(items, list):
            for index, item in enumerate(items):
                yield from _walk(item, rest, f"{prefix}{head[:-2]}[{index}].")
    else:
        yield from _walk(value.get(head), rest, f"{prefix}{head}.")


@dataclass(frozen=True, slots=True, kw_only=True)
class SchemaField:
    """One field of an event type's schema, nested ones included.

    Attributes:
        path: ``anggota[].nik``.
        spec: the field's definition in the ``.avsc`` (``doc``, ``pii``, ``pattern``, ...).
        type: its type with ``["null", T]`` unwrapped and named types resolved.
        nullable: whether ``null`` is allowed.
    """

    path: str
    spec: Mapping[str, Any]
    type: Any
    nullable: bool

    @property
    def logical_type(self) -> str | None:
        return self.type.get("logicalType") if isinstance(self.type, Mapping) else None

    @property
    def base_type(self) -> str | None:
        if isinstance(self.type, str):
            return self.type
        if isinstance(self.type, Mapping) and isinstance(self.type.get("type"), str):
            return str(self.type["type"])
        return None


def schema_fields(event_type: EventType) -> dict[str, SchemaField]:
    """Every field of an event type by path, in schema order (records inside arrays too)."""
    out: dict[str, SchemaField] = {}
    named: dict[str, Any] = {}
    _fields(event_type.schema, "", named, out)
    return out


def _resolve(schema: Any, named: dict[str, Any]) -> tuple[Any, bool]:
    nullable = False
    if isinstance(schema, list):
        branches = [b for b in schema if b != "null"]
        nullable = len(branches) < len(schema)
        schema = branches[0] if len(branches) == 1 else branches
    if isinstance(schema, str) and schema not in _PRIMITIVES:
        schema = named.get(schema, named.get(schema.rsplit(".", 1)[-1], schema))
    if isinstance(schema, Mapping) and isinstance(schema.get("name"), str):
        named.setdefault(schema["name"], schema)
        named.setdefault(schema["name"].rsplit(".", 1)[-1], schema)
    return schema, nullable


def _fields(
    record: Mapping[str, Any], prefix: str, named: dict[str, Any], out: dict[str, Any]
) -> None:
    for spec in record.get("fields", ()):
        path = f"{prefix}{spec['name']}"
        kind, nullable = _resolve(spec["type"], named)
        out[path] = SchemaField(path=path, spec=spec, type=kind, nullable=nullable)
        if isinstance(kind, Mapping) and kind.get("type") == "record":
            _fields(kind, path + ".", named, out)
        elif isinstance(kind, Mapping) and kind.get("type") == "array":
            items, _ = _resolve(kind["items"], named)
            if isinstance(items, Mapping) and items.get("type") == "record":
                _fields(items, path + "[].", named, out)

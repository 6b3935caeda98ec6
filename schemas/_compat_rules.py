"""Avro schema resolution rules: parse and normalise schemas, then walk reader against writer.

The public face is :mod:`lintas.schemas.compatibility`; this module holds the vocabulary
(:class:`IncompatibilityRule`, :class:`Incompatibility`) and the machinery.

Schemas are validated by ``fastavro.parse_schema`` and then normalised here to a small JSON
form that the rule walker compares: every named type has its full name (namespaces
resolved as the specification says), logical types are reduced to their underlying type
(resolution ignores them), ``error`` is read as ``record``, and later references to a named
type stay full-name strings that :meth:`ParsedSchema.resolve` looks up.

Paths are those described in :mod:`lintas.schemas.compatibility`: Confluent's
``/fields/0/type`` locations with field names in place of positions, because names survive
reordering.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any, Literal

from fastavro.schema import SchemaParseException, UnknownType, parse_schema

from lintas.schemas.exceptions import InvalidSchema

__all__ = [
    "Incompatibility",
    "IncompatibilityRule",
    "ParsedSchema",
    "find_incompatibilities",
    "parse",
]

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})

# (writer type, reader type) pairs the specification lets a reader promote.
PROMOTIONS = frozenset(
    {
        ("int", "long"),
        ("int", "float"),
        ("int", "double"),
        ("long", "float"),
        ("long", "double"),
        ("float", "double"),
        ("string", "bytes"),
        ("bytes", "string"),
    }
)


class IncompatibilityRule(StrEnum):
    """Why a reader cannot read a writer's data; the codes are Confluent's ``errorType``."""

    NAME_MISMATCH = "NAME_MISMATCH"
    FIXED_SIZE_MISMATCH = "FIXED_SIZE_MISMATCH"
    MISSING_ENUM_SYMBOLS = "MISSING_ENUM_SYMBOLS"
    READER_FIELD_MISSING_DEFAULT_VALUE = "READER_FIELD_MISSING_DEFAULT_VALUE"
    TYPE_MISMATCH = "TYPE_MISMATCH"
    MISSING_UNION_BRANCH = "MISSING_UNION_BRANCH"


@dataclass(frozen=True, slots=True)
class Incompatibility:
    """One reason why data written with one schema cannot be read with another.

    Attributes:
        path: where in the schema, e.g. ``/fields/alamat/fields/kode_wilayah`` (see the
            module docstring of :mod:`lintas.schemas.compatibility` for the format).
        rule: which resolution rule is broken.
        message: human text naming the path and the rule.
        version: the existing schema version involved, when the check was made by
            :func:`~lintas.schemas.compatibility.check_compatibility`.
        direction: ``"BACKWARD"`` when the new schema cannot read that version's data,
            ``"FORWARD"`` when that version cannot read the new schema's data.
    """

    path: str
    rule: IncompatibilityRule
    message: str
    version: int | None = None
    direction: Literal["BACKWARD", "FORWARD"] | None = None

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class ParsedSchema:
    """A validated schema in normalised JSON form.

    Attributes:
        root: the normalised schema.
        named: every named type by full name, for resolving references.
    """

    root: Any
    named: Mapping[str, dict[str, Any]]

    def resolve(self, node: Any) -> Any:
        """Return the definition behind a named-type reference, or ``node`` itself."""
        if isinstance(node, str) and node not in PRIMITIVES:
            return self.named[node]
        return node


def parse(schema: Any, *, label: str = "schema") -> ParsedSchema:
    """Validate and normalise a schema given as JSON text or JSON-like Python objects.

    Args:
        schema: a dict, a list (union), a type name such as ``"string"``, or JSON text.
        label: how messages name this schema ("new schema", "version 3", ...).

    Returns:
        The normalised schema; equal inputs share one cached result, so never mutate it.

    Raises:
        InvalidSchema: the schema is not valid Avro.
    """
    # JSON text, as the registry's REST API carries schemas; any other string is a bare
    # type name ("null", "string", "com.example.Foo"), which json.loads would misread.
    if isinstance(schema, str) and schema.lstrip()[:1] in ("{", "[", '"'):
        try:
            schema = json.loads(schema)
        except json.JSONDecodeError as exc:
            raise InvalidSchema(f"not valid JSON ({exc})", schema_label=label) from exc
    try:
        key = json.dumps(schema, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise InvalidSchema(f"not JSON-like ({exc})", schema_label=label) from exc
    try:
        return _parse_cached(key)
    except InvalidSchema as exc:
        raise InvalidSchema(exc.reason, schema_label=label) from exc


# A registry checks each new schema against the same few versions again and again, so
# their parsed form is kept by canonical JSON text. 256 entries only bound the memory: a
# miss costs one re-parse, not a wrong answer.
@lru_cache(maxsize=256)
def _parse_cached(key: str) -> ParsedSchema:
    schema = json.loads(key)
    try:
        parse_schema(schema, {}, _write_hint=False)
    except (SchemaParseException, UnknownType) as exc:
        raise InvalidSchema(str(exc)) from exc
    except (TypeError, KeyError, AttributeError, ValueError) as exc:
        # fastavro indexes the JSON without checking its shape first.
        raise InvalidSchema(f"malformed schema ({type(exc).__name__}: {exc})") from exc
    named: dict[str, dict[str, Any]] = {}
    try:
        root = _normalise(schema, "", named)
    except (TypeError, KeyError, AttributeError) as exc:
        # Shapes fastavro lets through, such as aliases or symbols that are not lists.
        raise InvalidSchema(f"malformed schema ({type(exc).__name__}: {exc})") from exc
    return ParsedSchema(root=root, named=named)


def _fullname(name: str, namespace: str) -> str:
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


def _normalise(node: Any, namespace: str, named: dict[str, dict[str, Any]]) -> Any:
    if isinstance(node, str):
        if node in PRIMITIVES:
            return node
        # Relative to the enclosing namespace first, then as written (Avro's Java parser
        # does the same), so "Foo" finds "a.b.Foo" inside a.b but also a top-level "Foo".
        full = _fullname(node, namespace)
        if full not in named and node in named:
            full = node
        if full not in named:
            raise InvalidSchema(f"unknown type {node!r}")
        return full
    if isinstance(node, list):
        return _normalise_union(node, namespace, named)
    if not isinstance(node, dict) or "type" not in node:
        raise InvalidSchema(f"expected a type name, a union or an object with 'type': {node!r}")
    kind = node["type"]
    if kind in ("record", "error", "enum", "fixed"):
        return _normalise_named(node, namespace, named)
    if kind == "array":
        return {"type": "array", "items": _normalise(node["items"], namespace, named)}
    if kind == "map":
        return {"type": "map", "values": _normalise(node["values"], namespace, named)}
    # {"type": "long", "logicalType": ...}, {"type": "com.x.Named"} or {"type": {...}}:
    # logical types resolve as their underlying type, so only that is kept.
    return _normalise(kind, namespace, named)


def _normalise_union(node: list[Any], namespace: str, named: dict[str, dict[str, Any]]) -> Any:
    branches = [_normalise(branch, namespace, named) for branch in node]
    seen: set[str] = set()
    for branch in branches:
        if isinstance(branch, list):
            raise InvalidSchema("a union may not directly contain another union")
        key = _branch_key(branch)
        if key in seen:
            raise InvalidSchema(f"the union {node!r} has more than one branch of type {key}")
        seen.add(key)
    return branches


def _branch_key(branch: Any) -> str:
    # Unions may hold one schema per unnamed type but any number of distinct named types.
    if isinstance(branch, str):
        return branch
    return str(branch["name"]) if "name" in branch else str(branch["type"])


def _normalise_named(
    node: dict[str, Any], namespace: str, named: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    kind = "record" if node["type"] == "error" else node["type"]
    name = node.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidSchema(f"a {kind} needs a name")
    declared = node.get("namespace")
    full = _fullname(name, declared if declared is not None else namespace)
    inner = full.rpartition(".")[0]
    aliases = [_fullname(alias, inner) for alias in _names_list(node, "aliases", full)]
    definition: dict[str, Any] = {"type": kind, "name": full, "aliases": aliases}
    # Registered before the fields are read so that a recursive reference resolves.
    named[full] = definition
    if kind == "fixed":
        size = node.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidSchema(f"fixed {full!r} needs a non-negative integer size")
        definition["size"] = size
    elif kind == "enum":
        definition["symbols"] = _names_list(node, "symbols", full)
        if "default" in node:
            definition["default"] = node["default"]
    else:
        definition["fields"] = _normalise_fields(node, full, inner, named)
    return definition


def _names_list(node: dict[str, Any], key: str, owner: str) -> list[str]:
    value = node.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidSchema(f"the {key} of {owner!r} must be a list of strings")
    return value


def _normalise_fields(
    node: dict[str, Any], full: str, namespace: str, named: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    raw_fields = node.get("fields")
    if not isinstance(raw_fields, list):
        raise InvalidSchema(f"record {full!r} needs a list of fields")
    fields: list[dict[str, Any]] = []
    names: set[str] = set()
    for raw in raw_fields:
        if not isinstance(raw, dict) or "name" not in raw or "type" not in raw:
            raise InvalidSchema(f"every field of record {full!r} needs a name and a type")
        if raw["name"] in names:
            raise InvalidSchema(f"record {full!r} has two fields named {raw['name']!r}")
        names.add(raw["name"])
        field = {
            "name": raw["name"],
            "type": _normalise(raw["type"], namespace, named),
            "aliases": _names_list(raw, "aliases", f"{full}.{raw['name']}"),
        }
        if "default" in raw:
            field["default"] = raw["default"]
        fields.append(field)
    return fields


def _kind(node: Any) -> str:
    if isinstance(node, list):
        return "union"
    if isinstance(node, str):
        return node
    return str(node["type"])


def _describe(node: Any) -> str:
    kind = _kind(node)
    if isinstance(node, dict) and "name" in node:
        return f"{kind} {node['name']!r}"
    return kind


def _short(name: str) -> str:
    return name.rpartition(".")[2]


def _names_match(reader: dict[str, Any], writer: dict[str, Any]) -> bool:
    # As in Avro's own SchemaCompatibility and in fastavro, names are compared without
    # their namespace, so moving a type to another namespace is not a break; the reader's
    # aliases rename it.
    wanted = _short(writer["name"])
    return wanted == _short(reader["name"]) or any(
        _short(alias) == wanted for alias in reader["aliases"]
    )


def _format_path(path: tuple[str, ...]) -> str:
    return "/" + "/".join(path)


class _Walker:
    """Walks a reader schema against a writer schema and collects what cannot be read."""

    def __init__(
        self, reader: ParsedSchema, writer: ParsedSchema, reader_label: str, writer_label: str
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._reader_label = reader_label
        self._writer_label = writer_label
        # (reader name, writer name) pairs already checked or being checked: a recursive
        # type meets itself again, and assuming the pair compatible there is sound because
        # any break inside it is reported when the pair is first walked.
        self._seen: set[tuple[str, str]] = set()
        self.found: list[Incompatibility] = []

    def _add(self, path: tuple[str, ...], rule: IncompatibilityRule, text: str) -> None:
        self.found.append(Incompatibility(_format_path(path), rule, f"{text} ({rule.value})"))

    def check(self, reader: Any, writer: Any, path: tuple[str, ...]) -> None:
        reader = self._reader.resolve(reader)
        writer = self._writer.resolve(writer)
        if isinstance(writer, list):
            self._check_writer_union(reader, writer, path)
        elif isinstance(reader, list):
            branch = self._pick_branch(reader, writer)
            if branch is None:
                self._missing_branch(reader, writer, path)
            else:
                self.check(branch, writer, path)
        else:
            self._check_same_shape(reader, writer, path)

    def _check_writer_union(self, reader: Any, writer: list[Any], path: tuple[str, ...]) -> None:
        # Every branch the writer may have chosen must be readable: a reader union needs a
        # matching branch for each, a plain reader must match each one itself.
        for index, writer_branch in enumerate(writer):
            branch_path = (*path, str(index))
            resolved = self._writer.resolve(writer_branch)
            if not isinstance(reader, list):
                self.check(reader, resolved, branch_path)
                continue
            reader_branch = self._pick_branch(reader, resolved)
            if reader_branch is None:
                self._missing_branch(reader, resolved, branch_path)
            else:
                self.check(reader_branch, resolved, branch_path)

    def _pick_branch(self, reader_union: list[Any], writer: Any) -> Any | None:
        # The specification reads a value with the first reader branch that matches the
        # writer's type; like Avro's Java reader we try exact matches before promotions.
        branches = [self._reader.resolve(branch) for branch in reader_union]
        writer_kind = _kind(writer)
        for branch in branches:
            if _kind(branch) == writer_kind and (
                not isinstance(branch, dict) or "name" not in branch or _names_match(branch, writer)
            ):
                return branch
        for branch in branches:
            if (writer_kind, _kind(branch)) in PROMOTIONS:
                return branch
        return None

    def _missing_branch(self, reader: list[Any], writer: Any, path: tuple[str, ...]) -> None:
        self._add(
            path,
            IncompatibilityRule.MISSING_UNION_BRANCH,
            f"The union at path '{_format_path(path)}' in {self._reader_label} has no "
            f"branch that can read {_describe(writer)} written with {self._writer_label}",
        )

    def _check_same_shape(self, reader: Any, writer: Any, path: tuple[str, ...]) -> None:
        reader_kind, writer_kind = _kind(reader), _kind(writer)
        if reader_kind != writer_kind:
            if (writer_kind, reader_kind) not in PROMOTIONS:
                self._add(
                    path,
                    IncompatibilityRule.TYPE_MISMATCH,
                    f"The type at path '{_format_path(path)}' is {_describe(reader)} in "
                    f"{self._reader_label} but {_describe(writer)} in "
                    f"{self._writer_label}, which cannot be read as {reader_kind}",
                )
        elif reader_kind == "array":
            self.check(reader["items"], writer["items"], (*path, "items"))
        elif reader_kind == "map":
            self.check(reader["values"], writer["values"], (*path, "values"))
        elif reader_kind in ("record", "enum", "fixed"):
            self._check_named(reader, writer, path)

    def _check_named(
        self, reader: dict[str, Any], writer: dict[str, Any], path: tuple[str, ...]
    ) -> None:
        where = _format_path(path)
        kind = reader["type"]
        if not _names_match(reader, writer):
            self._add(
                path,
                IncompatibilityRule.NAME_MISMATCH,
                f"The {kind} at path '{where}' is named {reader['name']!r} in "
                f"{self._reader_label} but {writer['name']!r} in {self._writer_label}, "
                f"and the reader has no alias for {_short(writer['name'])!r}",
            )
            return
        pair = (reader["name"], writer["name"])
        if pair in self._seen:
            return
        self._seen.add(pair)
        if kind == "fixed" and reader["size"] != writer["size"]:
            self._add(
                path,
                IncompatibilityRule.FIXED_SIZE_MISMATCH,
                f"The fixed {reader['name']!r} at path '{where}' has size {reader['size']} in "
                f"{self._reader_label} but {writer['size']} in {self._writer_label}",
            )
        elif kind == "enum":
            missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
            if missing and "default" not in reader:
                self._add(
                    path,
                    IncompatibilityRule.MISSING_ENUM_SYMBOLS,
                    f"The enum {reader['name']!r} at path '{where}' in "
                    f"{self._reader_label} lacks the symbols {missing} of "
                    f"{self._writer_label} and has no default symbol",
                )
        elif kind == "record":
            self._check_fields(reader, writer, path)

    def _check_fields(
        self, reader: dict[str, Any], writer: dict[str, Any], path: tuple[str, ...]
    ) -> None:
        writer_fields = {field["name"]: field for field in writer["fields"]}
        for field in reader["fields"]:
            field_path = (*path, "fields", field["name"])
            source = writer_fields.get(field["name"])
            for alias in field["aliases"]:
                if source is not None:
                    break
                source = writer_fields.get(alias)
            if source is not None:
                self.check(field["type"], source["type"], field_path)
            elif "default" not in field:
                self._add(
                    field_path,
                    IncompatibilityRule.READER_FIELD_MISSING_DEFAULT_VALUE,
                    f"The field {field['name']!r} at path '{_format_path(field_path)}' in "
                    f"{self._reader_label} has no default value and is missing in "
                    f"{self._writer_label}",
                )
        # Writer fields the reader does not name are skipped on read: nothing to check.


def find_incompatibilities(
    reader: ParsedSchema,
    writer: ParsedSchema,
    *,
    reader_label: str = "the reader schema",
    writer_label: str = "the writer schema",
) -> list[Incompatibility]:
    """List every reason why data written with ``writer`` cannot be read with ``reader``.

    Args:
        reader: the schema the data is read with.
        writer: the schema the data was written with.
        reader_label: how messages name the reader ("the new schema", "version 3", ...).
        writer_label: how messages name the writer.

    Returns:
        The incompatibilities in schema order; empty when every datum resolves.
    """
    walker = _Walker(reader, writer, reader_label, writer_label)
    walker.check(reader.root, writer.root, ())
    return walker.found

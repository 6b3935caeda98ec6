"""Property test: the compatibility checker agrees with fastavro's schema resolution.

Hypothesis draws a record schema (primitive fields, nullable and plain unions, enums,
nested records, arrays and maps) and evolves it (adds, removes, promotes or retypes
fields, adds or removes enum symbols and union branches, wraps or unwraps unions, renames
named types with or without an alias). Both
directions are then checked:

* compatible: every datum drawn for the writer schema is readable with the reader schema
  through ``fastavro.schemaless_writer`` and ``schemaless_reader``;
* incompatible: for every reported incompatibility, a datum built to reach its path (the
  writer's union branch it names, one array item, one map value, every symbol of an enum)
  makes fastavro's resolution fail.
"""

from __future__ import annotations

import copy
import io
from dataclasses import dataclass, field
from typing import Any

import fastavro
from fastavro.read import SchemaResolutionError
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from lintas.schemas.compatibility import (
    CompatibilityMode,
    Incompatibility,
    IncompatibilityRule,
    check_compatibility,
    check_reader_writer,
)

PRIMITIVES = ["boolean", "int", "long", "float", "double", "string", "bytes"]
PROMOTIONS = {
    "int": ["long", "float", "double"],
    "long": ["float", "double"],
    "float": ["double"],
    "string": ["bytes"],
    "bytes": ["string"],
}
SYMBOLS = ["A", "B", "C", "D", "E"]
FIELD_NAMES = ["a", "b", "c", "d", "e", "f"]

PROPERTY_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Names:
    """Fresh names for named types, so that evolved types never clash with old ones."""

    def __init__(self) -> None:
        self._count = 0

    def next(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}{self._count}"


# --- Schema generation ---------------------------------------------------------------------


@st.composite
def avro_type(draw: st.DrawFn, names: Names, depth: int, *, union: bool = True) -> Any:
    kinds = ["primitive", "primitive", "enum"]
    if union:
        kinds += ["nullable", "union"]
    if depth > 0:
        kinds += ["record", "array", "map"]
    kind = draw(st.sampled_from(kinds))
    if kind == "primitive":
        return draw(st.sampled_from(PRIMITIVES))
    if kind == "nullable":
        return ["null", draw(avro_type(names, depth, union=False))]
    if kind == "union":
        branches = draw(st.lists(st.sampled_from(PRIMITIVES), min_size=2, max_size=3, unique=True))
        return (["null"] if draw(st.booleans()) else []) + branches
    if kind == "enum":
        return draw(enum_type(names))
    if kind == "array":
        return {"type": "array", "items": draw(avro_type(names, depth - 1))}
    if kind == "map":
        return {"type": "map", "values": draw(avro_type(names, depth - 1))}
    return draw(record_type(names, depth - 1))


@st.composite
def enum_type(draw: st.DrawFn, names: Names) -> dict[str, Any]:
    symbols = draw(st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=4, unique=True))
    enum: dict[str, Any] = {"type": "enum", "name": names.next("Enum"), "symbols": symbols}
    if draw(st.booleans()):
        enum["default"] = symbols[0]
    return enum


@st.composite
def record_type(draw: st.DrawFn, names: Names, depth: int) -> dict[str, Any]:
    field_names = draw(st.lists(st.sampled_from(FIELD_NAMES), min_size=1, max_size=4, unique=True))
    fields = []
    for name in field_names:
        type_ = draw(avro_type(names, depth))
        fields.append(new_field(name, type_, with_default=draw(st.booleans())))
    return {"type": "record", "name": names.next("Rec"), "fields": fields}


def new_field(name: str, type_: Any, *, with_default: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"name": name, "type": type_}
    if with_default:
        result["default"] = minimal(type_, for_default=True)
    return result


def minimal(schema: Any, *, for_default: bool = False) -> Any:
    """The plainest value of a type; defaults use the JSON form and a union's first branch."""
    if isinstance(schema, list):
        value = minimal(schema[0], for_default=for_default)
        return value if for_default else (branch_name(schema[0]), value)
    kind = schema if isinstance(schema, str) else schema["type"]
    simple = {"null": None, "boolean": False, "int": 0, "long": 0, "float": 0.0, "double": 0.0}
    if kind in simple:
        return simple[kind]
    if kind == "string":
        return ""
    if kind == "bytes":
        return "" if for_default else b""
    if kind == "enum":
        return schema["symbols"][0]
    if kind == "array":
        return []
    if kind == "map":
        return {}
    return {f["name"]: minimal(f["type"], for_default=for_default) for f in schema["fields"]}


def branch_name(branch: Any) -> str:
    """The name fastavro's tuple notation ``(name, value)`` uses to pick a union branch."""
    if isinstance(branch, str):
        return branch
    return str(branch.get("name", branch["type"]))


# --- Evolution -----------------------------------------------------------------------------


@dataclass
class Sites:
    """The places in a schema an evolution can change, found by :func:`collect`."""

    records: list[dict[str, Any]] = field(default_factory=list)
    fields: list[dict[str, Any]] = field(default_factory=list)
    enums: list[dict[str, Any]] = field(default_factory=list)
    unions: list[list[Any]] = field(default_factory=list)


def collect(schema: Any, sites: Sites | None = None) -> Sites:
    sites = sites if sites is not None else Sites()
    if isinstance(schema, list):
        sites.unions.append(schema)
        for branch in schema:
            collect(branch, sites)
    elif isinstance(schema, dict):
        kind = schema["type"]
        if kind == "record":
            sites.records.append(schema)
            for f in schema["fields"]:
                sites.fields.append(f)
                collect(f["type"], sites)
        elif kind == "enum":
            sites.enums.append(schema)
        elif kind == "array":
            collect(schema["items"], sites)
        elif kind == "map":
            collect(schema["values"], sites)
    return sites


def evolve(data: st.DataObject, schema: dict[str, Any], names: Names) -> dict[str, Any]:
    """Return a changed deep copy of ``schema`` (one or two random evolutions)."""
    new = copy.deepcopy(schema)
    for _ in range(data.draw(st.integers(1, 2), label="evolutions")):
        sites = collect(new)
        operations: dict[str, list[Any]] = {
            "add_field": sites.records,
            "remove_field": [r for r in sites.records if r["fields"]],
            "promote": [
                f for f in sites.fields if isinstance(f["type"], str) and f["type"] in PROMOTIONS
            ],
            "change_type": sites.fields,
            "add_symbol": [e for e in sites.enums if len(e["symbols"]) < 8],
            "remove_symbol": [e for e in sites.enums if len(e["symbols"]) > 1],
            "toggle_enum_default": sites.enums,
            "add_branch": [u for u in sites.unions if spare_branches(u)],
            "remove_branch": [u for u in sites.unions if len(u) > 1],
            "rename": [*sites.records, *sites.enums],
            "wrap_in_union": [
                f for f in sites.fields if not isinstance(f["type"], list) and f["type"] != "null"
            ],
            "unwrap_union": [f for f in sites.fields if isinstance(f["type"], list)],
        }
        name = data.draw(
            st.sampled_from(sorted(op for op, where in operations.items() if where)),
            label="operation",
        )
        target = data.draw(st.sampled_from(operations[name]), label="site")
        apply(data, name, target, names)
    repair_defaults(new)
    return new


def apply(data: st.DataObject, operation: str, target: Any, names: Names) -> None:
    draw = data.draw
    if operation == "add_field":
        taken = {f["name"] for f in target["fields"]}
        name = draw(st.sampled_from([n for n in [*FIELD_NAMES, "g", "h"] if n not in taken]))
        type_ = draw(avro_type(names, 1))
        target["fields"].append(new_field(name, type_, with_default=draw(st.booleans())))
    elif operation == "remove_field":
        del target["fields"][draw(st.integers(0, len(target["fields"]) - 1))]
    elif operation == "promote":
        target["type"] = draw(st.sampled_from(PROMOTIONS[target["type"]]))
    elif operation == "change_type":
        target["type"] = draw(avro_type(names, 1))
    elif operation == "add_symbol":
        spare = [s for s in [*SYMBOLS, "F", "G", "H"] if s not in target["symbols"]]
        target["symbols"].insert(
            draw(st.integers(1, len(target["symbols"]))), draw(st.sampled_from(spare))
        )
    elif operation == "remove_symbol":
        # The first symbol stays: it is the enum default and the default of enum fields.
        del target["symbols"][draw(st.integers(1, len(target["symbols"]) - 1))]
    elif operation == "toggle_enum_default":
        if "default" in target:
            del target["default"]
        else:
            target["default"] = target["symbols"][0]
    elif operation == "add_branch":
        branch = draw(st.sampled_from(spare_branches(target)))
        target.insert(draw(st.integers(0, len(target))), branch)
    elif operation == "remove_branch":
        del target[draw(st.integers(0, len(target) - 1))]
    elif operation == "rename":
        # With an alias the reader still recognises the old name (one way only).
        if draw(st.booleans()):
            target["aliases"] = [target["name"]]
        target["name"] = names.next("Renamed")
    elif operation == "wrap_in_union":
        target["type"] = ["null", target["type"]]
    elif operation == "unwrap_union":
        target["type"] = draw(st.sampled_from(target["type"]))


def spare_branches(union: list[Any]) -> list[str]:
    """Unnamed types a union may still take (it holds at most one of each)."""
    return [p for p in ["null", *PRIMITIVES] if p not in union]


def repair_defaults(schema: Any) -> None:
    """Give every field default a value of the field's (possibly changed) type."""
    for f in collect(schema).fields:
        if "default" in f:
            f["default"] = minimal(f["type"], for_default=True)


# --- Data ----------------------------------------------------------------------------------


def datum(schema: Any) -> st.SearchStrategy[Any]:
    """Values of a schema; union values use tuple notation so the branch is explicit."""
    if isinstance(schema, list):
        return st.one_of(
            [st.tuples(st.just(branch_name(branch)), datum(branch)) for branch in schema]
        )
    kind = schema if isinstance(schema, str) else schema["type"]
    simple: dict[str, st.SearchStrategy[Any]] = {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.integers(-(2**31), 2**31 - 1),
        "long": st.integers(-(2**63), 2**63 - 1),
        "float": st.floats(width=32, allow_nan=False),
        "double": st.floats(allow_nan=False),
        "string": st.text(max_size=5),
        # UTF-8 text: Avro lets a string reader read bytes, which must then decode.
        "bytes": st.text(max_size=5).map(str.encode),
    }
    if kind in simple:
        return simple[kind]
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "array":
        return st.lists(datum(schema["items"]), max_size=3)
    if kind == "map":
        return st.dictionaries(st.text(max_size=3), datum(schema["values"]), max_size=3)
    return st.fixed_dictionaries({f["name"]: datum(f["type"]) for f in schema["fields"]})


def witnesses(schema: Any, segments: list[str], rule: IncompatibilityRule) -> list[Any]:
    """Writer data that reach the place ``segments`` name; every sibling is minimal."""
    if isinstance(schema, list):
        assert segments, "a path must name the writer's union branch"
        branch = schema[int(segments[0])]
        return [(branch_name(branch), w) for w in witnesses(branch, segments[1:], rule)]
    if not segments:
        if rule is IncompatibilityRule.MISSING_ENUM_SYMBOLS:
            return list(schema["symbols"])
        return [minimal(schema)]
    kind = schema if isinstance(schema, str) else schema["type"]
    head, *rest = segments
    if kind == "array":
        assert head == "items"
        return [[w] for w in witnesses(schema["items"], rest, rule)]
    if kind == "map":
        assert head == "values"
        return [{"k": w} for w in witnesses(schema["values"], rest, rule)]
    assert kind == "record" and head == "fields", segments
    name, *rest = rest
    base = minimal(schema)
    target = next((f for f in schema["fields"] if f["name"] == name), None)
    if target is None:
        # A reader field the writer lacks: any record of the writer reaches it.
        assert not rest and rule is IncompatibilityRule.READER_FIELD_MISSING_DEFAULT_VALUE
        return [base]
    return [{**base, name: w} for w in witnesses(target["type"], rest, rule)]


def roundtrip(reader: Any, writer: Any, value: Any) -> Any:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(writer), value)
    buf.seek(0)
    return fastavro.schemaless_reader(
        buf, fastavro.parse_schema(writer), fastavro.parse_schema(reader)
    )


def resolution_fails(reader: Any, writer: Any, value: Any) -> bool:
    try:
        roundtrip(reader, writer, value)
    except SchemaResolutionError:
        return True
    return False


def assert_witnessed(reader: Any, writer: Any, incompatibility: Incompatibility) -> None:
    segments = [s for s in incompatibility.path.split("/") if s]
    candidates = witnesses(writer, segments, incompatibility.rule)
    assert any(resolution_fails(reader, writer, c) for c in candidates), (
        f"{incompatibility} but fastavro reads every one of {candidates!r}"
    )


# --- Properties ----------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(st.data())
def test_checker_agrees_with_fastavro_resolution(data: st.DataObject) -> None:
    names = Names()
    old = data.draw(record_type(names, 2), label="old")
    new = evolve(data, old, names)
    outcomes = []
    for reader, writer in ((new, old), (old, new)):
        result = check_reader_writer(reader, writer)
        outcomes.append(result.is_compatible)
        event("compatible" if result.is_compatible else "incompatible")
        if result.is_compatible:
            for _ in range(2):
                value = data.draw(datum(writer), label="writer datum")
                read = roundtrip(reader, writer, value)
                assert set(read) == {f["name"] for f in reader["fields"]}
        else:
            for incompatibility in result.incompatibilities:
                event(incompatibility.rule.value)
                assert_witnessed(reader, writer, incompatibility)
    backward, forward = outcomes
    assert check_compatibility(new, [old], CompatibilityMode.FULL).is_compatible == (
        backward and forward
    )


@PROPERTY_SETTINGS
@given(st.data())
def test_every_schema_reads_its_own_data(data: st.DataObject) -> None:
    schema = data.draw(record_type(Names(), 2), label="schema")
    assert check_reader_writer(schema, schema).is_compatible
    assert check_reader_writer(schema, copy.deepcopy(schema)).is_compatible

"""Small helpers to walk raw Avro schema dicts (names, namespaces, unions).

The catalog and the model builder both walk the ``.avsc`` JSON as written (not fastavro's
parsed form, which drops nothing but renames); these helpers keep the naming rules of the
Avro specification in one place.
"""

from __future__ import annotations

from typing import Any

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
NAMED = frozenset({"record", "error", "enum", "fixed"})

Schema = Any
"""A raw Avro schema: a primitive name, a type reference, a dict or a list (union)."""


def full_name(name: str, namespace: str | None) -> str:
    """Return the full name of a named type, as the Avro specification resolves it."""
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


def namespace_of(schema: dict[str, Any], enclosing: str | None) -> str | None:
    """Return the namespace a named type defines for the types nested in it."""
    name = schema["name"]
    if "." in name:
        return str(name.rsplit(".", 1)[0])
    ns = schema.get("namespace", enclosing)
    return str(ns) if ns else None


def resolve(
    schema: Schema, namespace: str | None, named: dict[str, dict[str, Any]]
) -> tuple[Schema, str | None]:
    """Follow a type reference to its definition; other schemas come back unchanged.

    Args:
        schema: the schema as written at this place.
        namespace: the enclosing namespace, used to resolve short names.
        named: full name -> definition of the named types seen so far.

    Returns:
        The schema, and the namespace it was defined in (a named type's own name resolves
        against it), so callers can keep walking with the right namespace.
    """
    if isinstance(schema, str) and schema not in PRIMITIVES:
        for candidate in (full_name(schema, namespace), schema):
            if candidate in named:
                # The definition may have inherited its namespace, so take it from the key.
                defined_in = candidate.rsplit(".", 1)[0] if "." in candidate else None
                return named[candidate], defined_in
        raise KeyError(schema)
    return schema, namespace


def type_name(schema: Schema) -> str:
    """Return a short human name of a schema, for error messages (``string``, ``["null", int]``)."""
    if isinstance(schema, list):
        return "[" + ", ".join(type_name(s) for s in schema) + "]"
    if isinstance(schema, dict):
        logical = schema.get("logicalType")
        kind = schema.get("type")
        if logical:
            return f"{kind}/{logical}"
        if kind in NAMED:
            return f"{kind} {schema.get('name')}"
        if kind == "array":
            return f"array<{type_name(schema.get('items'))}>"
        if kind == "map":
            return f"map<{type_name(schema.get('values'))}>"
        return str(kind)
    return str(schema)


def nullable_branch(schema: Schema) -> Schema | None:
    """Return ``T`` for the union ``["null", T]`` (either order), else ``None``."""
    if isinstance(schema, list) and len(schema) == 2 and "null" in schema:
        other = schema[1] if schema[0] == "null" else schema[0]
        return None if other == "null" else other
    return None

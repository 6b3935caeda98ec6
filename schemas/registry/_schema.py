"""What the registry keeps of a schema, and how it decides that two schemas are the same.

Two texts are the same schema when their canonical forms match: the JSON with sorted keys
and no whitespace, and ``{"type": "string"}`` written as ``"string"``. Unlike Avro's
parsing canonical form it keeps ``doc``, ``default`` and ``aliases``, because a changed
default is a change a subject's compatibility must see. The text itself is kept as it was
first registered.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from lintas.schemas.exceptions import InvalidSchema

__all__ = ["SCHEMA_TYPES", "StoredSchema", "SubjectVersion", "canonical_form", "fingerprint"]

SCHEMA_TYPES = ("AVRO",)
"""The schema types this registry accepts (``GET /schemas/types``)."""

# Keys whose values are data, not schemas: never rewrite what is inside them.
_DATA_KEYS = frozenset({"default", "symbols", "aliases", "doc"})


@dataclass(frozen=True, slots=True)
class StoredSchema:
    """A schema under its global id."""

    id: int
    text: str
    schema_type: str = "AVRO"
    fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class SubjectVersion:
    """One version of a subject and the schema it points to."""

    subject: str
    version: int
    schema_id: int
    text: str
    schema_type: str = "AVRO"
    fingerprint: str = ""
    deleted: bool = False


def canonical_form(schema_text: str) -> str:
    """Return the canonical form of a schema's JSON text.

    Raises:
        InvalidSchema: the text is not JSON.
    """
    try:
        raw = orjson.loads(schema_text)
    except orjson.JSONDecodeError as exc:
        raise InvalidSchema(f"the schema is not JSON ({exc})") from exc
    return orjson.dumps(_normalise(raw), option=orjson.OPT_SORT_KEYS).decode()


def fingerprint(canonical: str) -> str:
    """The sha256 (hex) of a canonical form: the key the registry looks schemas up by."""
    return hashlib.sha256(canonical.encode()).hexdigest()


def _normalise(node: Any) -> Any:
    if isinstance(node, list):
        return [_normalise(item) for item in node]
    if isinstance(node, dict):
        out = {k: (v if k in _DATA_KEYS else _normalise(v)) for k, v in node.items()}
        # {"type": "string"} and "string" are the same Avro schema.
        if len(out) == 1 and isinstance(out.get("type"), str):
            return out["type"]
        return out
    return node

"""Test helpers: an in-memory :class:`~lintas.schemas.serde.SchemaResolver`.

For unit tests of code that serializes events, without a schema registry. It assigns ids
the way a registry does (one id per distinct schema text, shared across subjects) but
checks no compatibility; tests of the registry itself use the real one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from .exceptions import SchemaNotFound

__all__ = ["InMemorySchemaResolver"]


class InMemorySchemaResolver:
    """A :class:`~lintas.schemas.serde.SchemaResolver` that keeps schemas in a dict.

    Args:
        first_id: the id given to the first schema registered.
    """

    __slots__ = ("_by_id", "_ids", "_next_id", "_subjects", "calls")

    def __init__(self, *, first_id: int = 1) -> None:
        self._by_id: dict[int, str] = {}
        self._ids: dict[str, int] = {}
        self._subjects: dict[str, list[int]] = {}
        self._next_id = first_id
        #: Every call made, as (method, argument) pairs, so tests can count registry trips.
        self.calls: list[tuple[str, Any]] = []

    async def get_schema(self, schema_id: int) -> Mapping[str, Any] | str:
        """Return the schema text registered under ``schema_id``.

        Raises:
            SchemaNotFound: no schema has that id.
        """
        self.calls.append(("get_schema", schema_id))
        try:
            return self._by_id[schema_id]
        except KeyError:
            raise SchemaNotFound(f"schema id {schema_id}") from None

    async def register(self, subject: str, schema: str) -> int:
        """Register ``schema`` under ``subject`` and return its id (existing id if known)."""
        self.calls.append(("register", subject))
        text = _normalise(schema)
        schema_id = self._ids.get(text)
        if schema_id is None:
            schema_id = self._next_id
            self._next_id += 1
            self._ids[text] = schema_id
            self._by_id[schema_id] = text
        versions = self._subjects.setdefault(subject, [])
        if schema_id not in versions:
            versions.append(schema_id)
        return schema_id

    async def lookup(self, subject: str, schema: str) -> int:
        """Return the id of ``schema`` under ``subject``.

        Raises:
            SchemaNotFound: the schema is not registered under the subject.
        """
        self.calls.append(("lookup", subject))
        schema_id = self._ids.get(_normalise(schema))
        if schema_id is None or schema_id not in self._subjects.get(subject, ()):
            raise SchemaNotFound(f"this schema under subject {subject}")
        return schema_id


def _normalise(schema: str) -> str:
    return orjson.dumps(orjson.loads(schema), option=orjson.OPT_SORT_KEYS).decode()

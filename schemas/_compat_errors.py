"""Errors raised by the schema compatibility checker.

Kept apart from ``schemas/exceptions.py`` only because that module was being written at
the same time; :class:`InvalidSchema` belongs in it and should move there.

Tree::

    LintasError
    └── InvalidSchema    a schema is not valid Avro: names the schema and the reason
"""

from __future__ import annotations

from lintas.exceptions import LintasError

__all__ = ["InvalidSchema"]


class InvalidSchema(LintasError):
    """A schema handed to the compatibility checker is not valid Avro.

    The API layer maps it to Confluent's error 42201 ("Invalid schema").

    Attributes:
        reason: what is wrong, in the words of the parser that rejected it.
        schema_label: which schema it is ("new schema", "version 3", ...), if known.
    """

    def __init__(self, reason: str, *, schema_label: str | None = None) -> None:
        where = schema_label or "the schema"
        super().__init__(
            f"{where[:1].upper()}{where[1:]} is not a valid Avro schema: {reason}.",
            hint="Check it against the Avro specification "
            "(https://avro.apache.org/docs/current/specification/).",
        )
        self.reason = reason
        self.schema_label = schema_label

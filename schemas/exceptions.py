"""Errors raised by the contract catalog, the event models and the Avro serde.

Tree (this component's part of :mod:`lintas.exceptions`)::

    LintasError
    └── SchemaError                  something about a contract or its bytes went wrong
        ├── CatalogError             a .avsc file in the catalog breaks a catalog rule
        ├── InvalidSchema            a schema given to the compatibility checker is not Avro
        ├── UnknownEventType         no event type has that id, topic or subject
        ├── SchemaNotFound           a resolver knows no schema under that id (also a LookupError)
        ├── SerializationError       a record does not fit its writer schema
        └── DeserializationError     bytes cannot be read as a Confluent-framed Avro record
            └── UnknownSchemaId      the framed schema id is not known to the resolver

None of them is retriable: the same input fails the same way again. Errors of the registry
itself (unreachable, 5xx) are the registry client's and keep their own ``retriable``.
"""

from __future__ import annotations

from collections.abc import Sequence

from lintas.exceptions import LintasError

__all__ = [
    "CatalogError",
    "DeserializationError",
    "InvalidSchema",
    "SchemaError",
    "SchemaNotFound",
    "SerializationError",
    "UnknownEventType",
    "UnknownSchemaId",
]


class SchemaError(LintasError):
    """Base class for the errors of :mod:`lintas.schemas`."""


class CatalogError(SchemaError):
    """A ``.avsc`` file in the catalog breaks a rule of the catalog.

    Attributes:
        path: the file, relative to the catalog root (``dukcapil/kematian_dicatat.v1.avsc``).
        rule: the rule it breaks, as a sentence fragment.
    """

    def __init__(self, path: str, rule: str) -> None:
        super().__init__(
            f"Catalog file {path}: {rule}.",
            hint="Fix the .avsc file; the catalog rules are listed in lintas.schemas.catalog.",
        )
        self.path = path
        self.rule = rule


class UnknownEventType(SchemaError, LookupError):
    """No event type in the catalog matches the given id, topic or subject.

    Attributes:
        value: what was asked for.
        suggestions: the closest event type ids, best first (may be empty).
    """

    def __init__(self, value: str, suggestions: Sequence[str] = ()) -> None:
        hint = (
            "Did you mean " + ", ".join(suggestions) + "?"
            if suggestions
            else "See `lintas.schemas.load_catalog()` for the event types that exist."
        )
        super().__init__(f"Unknown event type {value!r}.", hint=hint)
        self.value = value
        self.suggestions = tuple(suggestions)


class SchemaNotFound(SchemaError, LookupError):
    """A :class:`~lintas.schemas.serde.SchemaResolver` has no schema under this id or subject.

    Resolvers raise this (any :class:`LookupError` is accepted) so that the deserializer can
    tell "unknown id" (the message goes to the dead-letter topic) from "registry down"
    (retriable, raised as the resolver's own error).
    """

    def __init__(self, what: str) -> None:
        super().__init__(f"No schema found for {what}.")
        self.what = what


class SerializationError(SchemaError):
    """A record does not fit its writer schema, so it cannot be encoded.

    Attributes:
        field: dotted path of the offending field (``anggota[1].nik``); empty for the
            record itself, ``None`` when the path could not be determined.
        expected: the Avro type the schema expects there.
        actual: the Python type of the value found there.
        reason: the underlying error, for the cases that are not a type mismatch.
    """

    def __init__(
        self,
        schema_name: str,
        *,
        field: str | None,
        expected: str | None = None,
        actual: str | None = None,
        reason: str | None = None,
    ) -> None:
        where = f"field {field!r}" if field else "the record"
        if expected is not None:
            message = (
                f"Cannot encode {schema_name}: {where} expects {expected}, got a value of type "
                f"{actual}."
            )
        else:
            message = f"Cannot encode {schema_name}: {where}: {reason}."
        super().__init__(message)
        self.schema_name = schema_name
        self.field = field
        self.expected = expected
        self.actual = actual
        self.reason = reason


class DeserializationError(SchemaError):
    """Bytes cannot be read as a Confluent wire-format Avro record.

    Attributes:
        reason: what is wrong with the bytes.
        schema_id: the schema id from the header, when the header could be read.
        topic, partition, offset: where the message came from, when the caller said so;
            the dead-letter handler copies them into the DLQ headers.
    """

    def __init__(
        self,
        reason: str,
        *,
        schema_id: int | None = None,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        where = ""
        if topic is not None:
            where = f" (topic {topic}"
            if partition is not None:
                where += f", partition {partition}"
            if offset is not None:
                where += f", offset {offset}"
            where += ")"
        super().__init__(f"Cannot decode message{where}: {reason}.")
        self.reason = reason
        self.schema_id = schema_id
        self.topic = topic
        self.partition = partition
        self.offset = offset


class UnknownSchemaId(DeserializationError):
    """The schema id in the message header is not known to the schema resolver."""

    def __init__(
        self,
        schema_id: int,
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        super().__init__(
            f"schema id {schema_id} is not known to the schema registry",
            schema_id=schema_id,
            topic=topic,
            partition=partition,
            offset=offset,
        )


class InvalidSchema(SchemaError):
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

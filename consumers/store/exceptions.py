"""Errors of the merged store: its typed tables and the rows written to them.

Tree (this component's part of :mod:`lintas.exceptions`)::

    LintasError
    └── StoreError                  the merged store cannot take something as it is
        ├── StoreUnavailable        the database cannot be reached (retriable)
        ├── SchemaConflict          a schema change the typed table cannot follow
        ├── CanonicalRecordInvalid  a canonical record lacks what the raw table needs
        └── RetentionInvalid        an event type's retention in its contract breaks a rule

Only :class:`StoreUnavailable` is retriable: the sink waits and tries again. The same
schema or record fails the same way again: the sink stops the event type concerned (a
conflict) or dead-letters the record (an invalid one), and the others run on (see
``docs/store.md``).
"""

from __future__ import annotations

from lintas.exceptions import LintasError

__all__ = [
    "CanonicalRecordInvalid",
    "RetentionInvalid",
    "SchemaConflict",
    "StoreError",
    "StoreUnavailable",
]


class StoreError(LintasError):
    """Base class of the merged store's errors."""


class StoreUnavailable(StoreError):
    """The store's database cannot be reached; the sink retries and nothing is lost.

    Attributes:
        reason: the driver's error, as text.
    """

    retriable = True

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"The store's database cannot be reached: {reason}.",
            hint="Check that PostgreSQL runs (lintas status) and LINTAS_PG_DSN is right.",
        )
        self.reason = reason


class SchemaConflict(StoreError):
    """A new writer schema changes a typed table in a way the store cannot follow.

    Attributes:
        event_type: the event type id (``dukcapil.kematian_dicatat.v1``).
        table: the typed table (``store.dukcapil_kematian_dicatat_v1``).
        column: the column concerned, or ``None`` for the table as a whole.
        reason: what changed, e.g. ``column is bigint, the new schema needs text``.
    """

    def __init__(self, event_type: str, table: str, column: str | None, reason: str) -> None:
        where = f"{table}.{column}" if column else table
        super().__init__(
            f"The store cannot follow the schema of {event_type}: {where}: {reason}.",
            hint="A breaking change needs a new major version (a new topic and table); or "
            "change the table by hand to match, then restart the sink (docs/store.md).",
        )
        self.event_type = event_type
        self.table = table
        self.column = column
        self.reason = reason


class CanonicalRecordInvalid(StoreError):
    """A canonical record misses an envelope field the raw table needs, or has a bad value.

    Attributes:
        field: the envelope field (``event_id``).
        reason: what is wrong with it.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(
            f"Canonical record field {field!r}: {reason}.",
            hint="The canonical schema and the store disagree: see lintas.consumers.store.rows.",
        )
        self.field = field
        self.reason = reason


class RetentionInvalid(StoreError):
    """``store_retention_days`` of ``event_type``'s contract is not a number of days.

    A typo must not keep personal data forever (or purge it at once), so the retention
    job refuses to start rather than guess.
    """

    def __init__(self, event_type: str, value: object, rule: str) -> None:
        super().__init__(
            f"The store retention of {event_type} is {value!r}: {rule}.",
            hint="Fix store_retention_days in its .avsc, or set its days in "
            "LINTAS_RETENTION__EVENT_TYPES.",
        )
        self.event_type = event_type
        self.value = value
        self.rule = rule

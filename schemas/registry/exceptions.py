"""Errors of the schema registry, on the server and in its client.

They know nothing of HTTP: the API layer (``_errors.py``) maps each to Confluent's status
and error code, and the client maps the codes back, so both sides raise the same classes.

Tree (this component's part of :mod:`lintas.exceptions`)::

    LintasError
    └── SchemaError                        (lintas.schemas.exceptions)
        ├── InvalidSchema                  not valid Avro, or not AVRO at all     42201
        └── RegistryError
            ├── SubjectNotFound            also a LookupError                      40401
            ├── VersionNotFound            also a LookupError                      40402
            ├── SchemaNotFound             also lintas.schemas.SchemaNotFound      40403
            ├── SubjectSoftDeleted         soft delete of a soft-deleted subject   40404
            ├── SubjectNotSoftDeleted      permanent delete before a soft one      40405
            ├── VersionSoftDeleted         soft delete of a soft-deleted version   40406
            ├── VersionNotSoftDeleted      permanent delete before a soft one      40407
            ├── ConfigNotFound             no subject-level compatibility / mode   40408/40409
            ├── IncompatibleSchema         breaks the subject's compatibility      409
            ├── InvalidVersion             not a version number or "latest"        42202
            ├── InvalidCompatibilityLevel  not one of NONE, BACKWARD, ...          42203
            ├── InvalidMode                not READWRITE, READONLY or IMPORT       42204
            ├── OperationNotPermitted      read-only mode, import rules            42205
            ├── IdConflict                 an imported id or version is taken      42207
            ├── SchemaRegistryError        any other error answer (client side)
            └── RegistryUnavailable        cannot reach the registry (retriable)

Only :class:`RegistryUnavailable` and 5xx :class:`SchemaRegistryError` are retriable.
"""

from __future__ import annotations

from collections.abc import Sequence

from lintas.schemas.exceptions import InvalidSchema, SchemaError
from lintas.schemas.exceptions import SchemaNotFound as _ResolverSchemaNotFound

__all__ = [
    "ConfigNotFound",
    "IdConflict",
    "IncompatibleSchema",
    "InvalidCompatibilityLevel",
    "InvalidMode",
    "InvalidSchema",
    "InvalidVersion",
    "OperationNotPermitted",
    "RegistryError",
    "RegistryUnavailable",
    "SchemaNotFound",
    "SchemaRegistryError",
    "SubjectNotFound",
    "SubjectNotSoftDeleted",
    "SubjectSoftDeleted",
    "VersionNotFound",
    "VersionNotSoftDeleted",
    "VersionSoftDeleted",
]


class RegistryError(SchemaError):
    """Base class for the errors of the schema registry and its client."""


class SubjectNotFound(RegistryError, LookupError):
    """No (visible) version is registered under ``subject``."""

    def __init__(self, subject: str) -> None:
        super().__init__(f"Subject '{subject}' not found.")
        self.subject = subject


class VersionNotFound(RegistryError, LookupError):
    """The subject has no (visible) version ``version``."""

    def __init__(self, subject: str, version: int | str) -> None:
        super().__init__(f"Version {version} not found for subject '{subject}'.")
        self.subject = subject
        self.version = version


class SchemaNotFound(RegistryError, _ResolverSchemaNotFound):
    """No schema has this id, or the schema is not registered under the subject.

    Also a :class:`lintas.schemas.SchemaNotFound` (and so a :class:`LookupError`), which
    is what the serde's resolver protocol expects for an unknown id.
    """

    def __init__(self, *, schema_id: int | None = None, subject: str | None = None) -> None:
        what = f"schema id {schema_id}" if schema_id is not None else "this schema"
        if subject is not None:
            what += f" under subject '{subject}'"
        super().__init__(what)
        self.message = "Schema not found" if schema_id is None else f"Schema {schema_id} not found"
        if subject is not None and schema_id is None:
            self.message = f"Schema not found under subject '{subject}'"
        self.schema_id = schema_id
        self.subject = subject


class SubjectSoftDeleted(RegistryError):
    """A soft delete was asked for a subject whose versions are all soft-deleted already."""

    def __init__(self, subject: str) -> None:
        super().__init__(
            f"Subject '{subject}' was soft deleted. Set permanent=true to delete permanently."
        )
        self.subject = subject


class SubjectNotSoftDeleted(RegistryError):
    """A permanent delete was asked for a subject that still has live versions."""

    def __init__(self, subject: str) -> None:
        super().__init__(
            f"Subject '{subject}' was not deleted first before being permanently deleted."
        )
        self.subject = subject


class VersionSoftDeleted(RegistryError):
    """A soft delete was asked for a version that is soft-deleted already."""

    def __init__(self, subject: str, version: int) -> None:
        super().__init__(
            f"Subject '{subject}' Version {version} was soft deleted. "
            "Set permanent=true to delete permanently."
        )
        self.subject = subject
        self.version = version


class VersionNotSoftDeleted(RegistryError):
    """A permanent delete was asked for a version that is not soft-deleted."""

    def __init__(self, subject: str, version: int) -> None:
        super().__init__(
            f"Subject '{subject}' Version {version} was not deleted first before being "
            "permanently deleted."
        )
        self.subject = subject
        self.version = version


class ConfigNotFound(RegistryError, LookupError):
    """The subject has no compatibility level (``what="compatibility"``) or mode of its own."""

    def __init__(self, subject: str, what: str = "compatibility") -> None:
        label = "compatibility level" if what == "compatibility" else "mode"
        super().__init__(f"Subject '{subject}' does not have a subject-level {label} configured.")
        self.subject = subject
        self.what = what


class IncompatibleSchema(RegistryError):
    """The schema breaks the subject's compatibility level.

    Attributes:
        subject: the subject it was checked against.
        reasons: one message per incompatibility, each naming the field path and the rule.
    """

    def __init__(self, subject: str, reasons: Sequence[str]) -> None:
        super().__init__(
            f"Schema being registered is incompatible with an earlier schema for subject "
            f"'{subject}', details: [{'; '.join(reasons)}]"
        )
        self.subject = subject
        self.reasons = list(reasons)


class InvalidVersion(RegistryError):
    """A version is neither a positive number, ``-1`` nor ``latest``."""

    def __init__(self, value: object) -> None:
        super().__init__(
            f"The specified version '{value}' is not a valid version id. Allowed values are "
            'between [1, 2^31-1] and the string "latest"'
        )
        self.value = value


class InvalidCompatibilityLevel(RegistryError):
    """A compatibility level that does not exist."""

    def __init__(self, value: object) -> None:
        super().__init__(
            f"Invalid compatibility level {value!r}. Valid values are NONE, BACKWARD, "
            "BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE"
        )
        self.value = value


class InvalidMode(RegistryError):
    """A mode that does not exist."""

    def __init__(self, value: object) -> None:
        super().__init__(f"Invalid mode {value!r}. Valid values are READWRITE, READONLY, IMPORT")
        self.value = value


class OperationNotPermitted(RegistryError):
    """The registry's mode forbids the operation (a write in READONLY, say)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class IdConflict(RegistryError):
    """An import gave an id or version that is already taken by another schema."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SchemaRegistryError(RegistryError):
    """An error answer of a registry that no more specific class describes.

    Attributes:
        http_status_code: the HTTP status.
        error_code: Confluent's error code from the body (the status if there was none).
        error_message: the message from the body.
    """

    def __init__(self, http_status_code: int, error_code: int, error_message: str) -> None:
        super().__init__(f"Schema registry error {error_code}: {error_message}")
        self.http_status_code = http_status_code
        self.error_code = error_code
        self.error_message = error_message
        # A fault of the registry (its database is down, say) may pass; bad input will not.
        self.retriable = http_status_code >= 500


class RegistryUnavailable(RegistryError):
    """The registry cannot be reached or did not answer in time."""

    retriable = True

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"The schema registry at {url} is unavailable: {reason}.",
            hint="Check that it runs (`lintas status`) and that the URL is right.",
        )
        self.url = url
        self.reason = reason

"""The one place where registry errors meet HTTP: Confluent's status and error codes.

The server turns an exception into ``{"error_code": ..., "message": ...}`` with
:func:`error_response`; the client turns such a body back into the same exception class
with :func:`error_from_body`. Codes are Confluent's (``io.confluent.kafka.schemaregistry.
rest.exceptions.Errors``), so any Confluent client understands them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

import orjson

from lintas.schemas.exceptions import InvalidSchema, SchemaError

from .exceptions import (
    ConfigNotFound,
    IdConflict,
    IncompatibleSchema,
    InvalidCompatibilityLevel,
    InvalidMode,
    InvalidVersion,
    OperationNotPermitted,
    RegistryError,
    SchemaNotFound,
    SchemaRegistryError,
    SubjectNotFound,
    SubjectNotSoftDeleted,
    SubjectSoftDeleted,
    VersionNotFound,
    VersionNotSoftDeleted,
    VersionSoftDeleted,
)

__all__ = [
    "ERROR_CODES",
    "ApiError",
    "error_body",
    "error_from_body",
    "error_status",
]

log = logging.getLogger("lintas.schemas.registry")

SUBJECT_NOT_FOUND: Final = 40401
VERSION_NOT_FOUND: Final = 40402
SCHEMA_NOT_FOUND: Final = 40403
SUBJECT_SOFT_DELETED: Final = 40404
SUBJECT_NOT_SOFT_DELETED: Final = 40405
VERSION_SOFT_DELETED: Final = 40406
VERSION_NOT_SOFT_DELETED: Final = 40407
SUBJECT_COMPATIBILITY_NOT_CONFIGURED: Final = 40408
SUBJECT_MODE_NOT_CONFIGURED: Final = 40409
INCOMPATIBLE_SCHEMA: Final = 409
INVALID_SCHEMA: Final = 42201
INVALID_VERSION: Final = 42202
INVALID_COMPATIBILITY_LEVEL: Final = 42203
INVALID_MODE: Final = 42204
OPERATION_NOT_PERMITTED: Final = 42205
ID_DOES_NOT_MATCH: Final = 42207
STORE_ERROR: Final = 50001
OPERATION_TIMEOUT: Final = 50002

# Domain error -> Confluent error code; the HTTP status is the code's first three digits.
ERROR_CODES: Final[dict[type[Exception], int]] = {
    SubjectNotFound: SUBJECT_NOT_FOUND,
    VersionNotFound: VERSION_NOT_FOUND,
    SchemaNotFound: SCHEMA_NOT_FOUND,
    SubjectSoftDeleted: SUBJECT_SOFT_DELETED,
    SubjectNotSoftDeleted: SUBJECT_NOT_SOFT_DELETED,
    VersionSoftDeleted: VERSION_SOFT_DELETED,
    VersionNotSoftDeleted: VERSION_NOT_SOFT_DELETED,
    IncompatibleSchema: INCOMPATIBLE_SCHEMA,
    InvalidSchema: INVALID_SCHEMA,
    InvalidVersion: INVALID_VERSION,
    InvalidCompatibilityLevel: INVALID_COMPATIBILITY_LEVEL,
    InvalidMode: INVALID_MODE,
    OperationNotPermitted: OPERATION_NOT_PERMITTED,
    IdConflict: ID_DOES_NOT_MATCH,
}


class ApiError(Exception):
    """A request the API refuses before it reaches the registry (bad JSON, too large).

    Not a domain error: it only exists at the HTTP boundary.
    """

    def __init__(self, status: int, error_code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


def error_status(error_code: int) -> int:
    """The HTTP status of a Confluent error code (``40401`` -> ``404``, ``409`` -> ``409``)."""
    return error_code if error_code < 1000 else error_code // 100


def error_body(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """Map any exception to ``(HTTP status, Confluent error body)``.

    Domain errors get their code; database and timeout failures get 50001/50002 and are
    logged with their traceback, as is anything unexpected (500). The message of an
    unexpected error is not sent to the client: it may hold internals.
    """
    if isinstance(exc, ApiError):
        return exc.status, {"error_code": exc.error_code, "message": exc.message}
    if isinstance(exc, ConfigNotFound):
        code = (
            SUBJECT_COMPATIBILITY_NOT_CONFIGURED
            if exc.what == "compatibility"
            else SUBJECT_MODE_NOT_CONFIGURED
        )
        return error_status(code), {"error_code": code, "message": exc.message}
    for kind in type(exc).__mro__:
        found = ERROR_CODES.get(kind)
        if found is not None:
            code = found
            body: dict[str, Any] = {"error_code": code, "message": _message(exc)}
            if isinstance(exc, IncompatibleSchema):
                body["messages"] = exc.reasons
            return error_status(code), body
    if isinstance(exc, RegistryError):
        # A domain error without a code of its own is still the caller's problem.
        return 422, {"error_code": 422, "message": exc.message}
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        log.error("registry operation timed out", exc_info=exc)
        return 500, {"error_code": OPERATION_TIMEOUT, "message": "Operation timed out"}
    if _is_store_error(exc):
        log.error("registry database error", exc_info=exc)
        return 500, {"error_code": STORE_ERROR, "message": "Error in the backend data store"}
    log.error("unexpected registry error", exc_info=exc)
    return 500, {"error_code": 500, "message": "Internal Server Error"}


def _message(exc: BaseException) -> str:
    if isinstance(exc, InvalidSchema):
        # Confluent's wording first, then the parser's reason.
        return f"Invalid schema: {exc.reason}"
    return getattr(exc, "message", None) or str(exc)


def _is_store_error(exc: BaseException) -> bool:
    import asyncpg

    return isinstance(
        exc, asyncpg.PostgresError | asyncpg.InterfaceError | ConnectionError | OSError
    )


def error_from_body(
    status: int,
    content: bytes,
    *,
    subject: str | None = None,
    version: int | str | None = None,
    schema_id: int | None = None,
) -> SchemaError:
    """Turn an error answer back into the registry's exception class.

    Args:
        status: the HTTP status.
        content: the body; need not be JSON (a proxy's HTML error page, say).
        subject, version, schema_id: what the request was about, for the error's fields.
    """
    try:
        doc = orjson.loads(content)
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict):
        doc = {}
    code = doc.get("error_code", status)
    message = str(doc.get("message") or content[:200].decode(errors="replace") or status)
    code = code if isinstance(code, int) else status
    subj = subject or "?"
    err: SchemaError
    if code == SUBJECT_NOT_FOUND:
        err = SubjectNotFound(subj)
    elif code == VERSION_NOT_FOUND:
        err = VersionNotFound(subj, version if version is not None else "?")
    elif code == SCHEMA_NOT_FOUND:
        err = SchemaNotFound(schema_id=schema_id, subject=subject)
    elif code == SUBJECT_SOFT_DELETED:
        err = SubjectSoftDeleted(subj)
    elif code == SUBJECT_NOT_SOFT_DELETED:
        err = SubjectNotSoftDeleted(subj)
    elif code == VERSION_SOFT_DELETED:
        err = VersionSoftDeleted(subj, int(version) if isinstance(version, int) else -1)
    elif code == VERSION_NOT_SOFT_DELETED:
        err = VersionNotSoftDeleted(subj, int(version) if isinstance(version, int) else -1)
    elif code in (SUBJECT_COMPATIBILITY_NOT_CONFIGURED, SUBJECT_MODE_NOT_CONFIGURED):
        what = "compatibility" if code == SUBJECT_COMPATIBILITY_NOT_CONFIGURED else "mode"
        err = ConfigNotFound(subj, what)
    elif code == INCOMPATIBLE_SCHEMA:
        reasons = doc.get("messages")
        err = IncompatibleSchema(subj, reasons if isinstance(reasons, list) else [message])
    elif code == INVALID_SCHEMA:
        err = InvalidSchema(message.removeprefix("Invalid schema: "))
    elif code == INVALID_VERSION:
        err = InvalidVersion(version)
    elif code == INVALID_COMPATIBILITY_LEVEL:
        err = InvalidCompatibilityLevel(message)
    elif code == INVALID_MODE:
        err = InvalidMode(message)
    elif code == OPERATION_NOT_PERMITTED:
        err = OperationNotPermitted(message)
    elif code == ID_DOES_NOT_MATCH:
        err = IdConflict(message)
    else:
        return SchemaRegistryError(status, code, message)
    # Keep the server's own words: they may say more than the class's template.
    err.message = message
    return err

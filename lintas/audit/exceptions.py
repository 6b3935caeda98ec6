"""Errors of the audit log.

Tree (under :class:`lintas.exceptions.LintasError`)::

    AuditError
    ├── AuditUnavailable    an entry could not be written (the database refused or is away)
    └── PgauditLogMissing   the server's jsonlog, where pgaudit's records are, cannot be read

An action that must be audited is not done without its entry: callers let
:class:`AuditUnavailable` propagate rather than carry on unaudited.
"""

from __future__ import annotations

from pathlib import Path

from lintas.exceptions import LintasError

__all__ = ["AuditError", "AuditUnavailable", "PgauditLogMissing"]


class AuditError(LintasError):
    """Base of the errors raised by :mod:`lintas.audit`."""


class AuditUnavailable(AuditError):
    """The entry ``action`` on ``target`` could not be written to the audit log."""

    retriable = True

    def __init__(self, action: str, target: str, reason: str) -> None:
        super().__init__(
            f"The audit log did not take the entry {action} {target}: {reason}.",
            hint="Check that PostgreSQL is reachable and migrated (`lintas status`).",
        )
        self.action = action
        self.target = target
        self.reason = reason


class PgauditLogMissing(AuditError):
    """The directory of the server's ``jsonlog`` files does not exist or cannot be read."""

    def __init__(self, path: Path | None, reason: str) -> None:
        where = str(path) if path is not None else "(not configured)"
        super().__init__(
            f"PostgreSQL's jsonlog directory {where} cannot be read: {reason}.",
            hint="Set LINTAS_AUDIT__PGAUDIT_LOG_DIR to the server's log_directory "
            "(log_destination must include jsonlog), or run the local stack (`lintas up`).",
        )
        self.path = path
        self.reason = reason

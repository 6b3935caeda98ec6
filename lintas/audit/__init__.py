"""The audit log: who did what on the platform, append-only, in PostgreSQL.

Components record what they change; the portal shows it to operators::

    from lintas.audit import AuditAction, acting_as, record

    async with conn.transaction():
        ...                                   # the change itself
        await record(conn, None, AuditAction.API_KEY_ISSUED, "app:siak", {"key_id": kid})

    with acting_as("portal:siti"):            # where a request enters: who is acting
        ...

Entries are never updated; the table refuses UPDATE and TRUNCATE, and DELETE of entries
younger than 365 days, for every role (``lintas/migrations/0008_audit.sql``). The SQL that
analysts run in their own sessions is logged by the database (pgaudit) and imported into
the same log (:mod:`lintas.audit.pgaudit`). See ``docs/security.md``.
"""

from ._log import AuditEntry, AuditLog, BlockingAuditLog, record, record_many
from .actions import AuditAction
from .actor import acting_as, current_actor, process_actor
from .exceptions import AuditError, AuditUnavailable, PgauditLogMissing
from .pgaudit import ImportReport, import_periodically, import_pgaudit, pgaudit_log_dir
from .queries import LoggedEntry, list_entries, source_counts

__all__ = [
    # recording
    "AuditAction",
    "AuditEntry",
    "AuditLog",
    "BlockingAuditLog",
    "record",
    "record_many",
    # who is acting
    "acting_as",
    "current_actor",
    "process_actor",
    # reading
    "LoggedEntry",
    "list_entries",
    "source_counts",
    # pgaudit
    "ImportReport",
    "import_periodically",
    "import_pgaudit",
    "pgaudit_log_dir",
    # errors
    "AuditError",
    "AuditUnavailable",
    "PgauditLogMissing",
]

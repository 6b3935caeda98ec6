"""What the audit log records: one action per kind of entry."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["AuditAction"]


class AuditAction(StrEnum):
    """The kinds of audit entries; the portal's audit page filters on them."""

    # credentials (the directory, lintas.security)
    API_KEY_ISSUED = "api_key.issued"
    API_KEY_ROTATED = "api_key.rotated"
    """A new key while older ones were still valid: they now expire after the overlap."""
    API_KEY_REVOKED = "api_key.revoked"
    WEBHOOK_SECRET_ISSUED = "webhook_secret.issued"
    WEBHOOK_SECRET_ROTATED = "webhook_secret.rotated"
    KAFKA_CREDENTIAL_ISSUED = "kafka_credential.issued"
    KAFKA_CREDENTIAL_DELETED = "kafka_credential.deleted"
    ACL_ADDED = "acl.added"
    ACL_REMOVED = "acl.removed"
    # operations
    DLQ_REPLAYED = "dlq.replayed"
    SCHEMA_REGISTERED = "schema.registered"
    SCHEMA_DELETED = "schema.deleted"
    RETENTION_APPLIED = "retention.applied"
    # access to personal data
    ANALYST_QUERY = "analyst.query"
    """A statement run through ``lintas query`` (recorded before it runs)."""
    ANALYST_SQL = "analyst.sql"
    """A statement pgaudit logged in an analyst's own session (psql, DBeaver, Metabase)."""
    ANALYST_SQL_REFUSED = "analyst.sql_refused"
    """A statement or a sign-in of an analyst's login the database refused (server log)."""
    DB_SQL = "db.sql"
    """A statement pgaudit logged for any other login (a read of the analytics views by a
    platform role, say)."""
    PORTAL_SIGN_IN = "portal.sign_in"
    PORTAL_SIGN_IN_FAILED = "portal.sign_in_failed"

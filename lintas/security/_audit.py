"""The audit entries of changes on the broker: ACLs added and removed, credentials set.

Written after the broker applied a change (the broker and PostgreSQL share no
transaction), from the plan that was applied. An entry that cannot be written is logged
at ERROR with what it would have said and does not undo the change: a password already
set on the broker must still reach the operator who asked for it, or the application
would be locked out.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable

from lintas.audit import AuditAction, AuditEntry, AuditUnavailable, BlockingAuditLog

from .acls import AclPlan, AclRule
from .principals import principal_of

__all__ = ["acl_entries", "credential_entries", "write_entries"]

log = logging.getLogger("lintas.security")


def _by_principal(rules: Iterable[AclRule]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for rule in rules:
        grouped[rule.principal].append(rule.describe())
    return grouped


def acl_entries(plan: AclPlan) -> list[AuditEntry]:
    """One entry per principal and direction: the rules added, the rules removed."""
    entries = [
        AuditEntry(action=AuditAction.ACL_ADDED, target=who, details={"rules": sorted(rules)})
        for who, rules in sorted(_by_principal(plan.add).items())
    ]
    entries += [
        AuditEntry(action=AuditAction.ACL_REMOVED, target=who, details={"rules": sorted(rules)})
        for who, rules in sorted(_by_principal(plan.remove).items())
    ]
    return entries


def credential_entries(
    *, issued: Iterable[str] = (), deleted: Iterable[str] = (), to_file: bool = False
) -> list[AuditEntry]:
    """Credentials set (a new password, shown once or written to a service's file) and
    deleted, by SCRAM user."""
    how = "password file" if to_file else "shown once"
    entries = [
        AuditEntry(
            action=AuditAction.KAFKA_CREDENTIAL_ISSUED,
            target=principal_of(user),
            details={"mechanism": "SCRAM-SHA-512", "handed_over": how},
        )
        for user in issued
    ]
    entries += [
        AuditEntry(action=AuditAction.KAFKA_CREDENTIAL_DELETED, target=principal_of(user))
        for user in deleted
    ]
    return entries


def write_entries(audit: BlockingAuditLog | None, entries: list[AuditEntry]) -> None:
    """Write ``entries``; a failure is logged, never raised (see the module's note)."""
    if audit is None or not entries:
        return
    try:
        audit.record_many(entries)
    except AuditUnavailable as exc:
        lost = "; ".join(f"{e.action.value} {e.target}" for e in entries)
        log.error("broker changes applied but not audited (%s): %s", exc.reason, lost)

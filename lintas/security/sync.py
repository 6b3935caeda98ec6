"""From the settings and the directory to the broker: what ``lintas`` commands call.

:func:`sync_security` reconciles everything (``lintas security sync``, ``lintas up``);
:func:`provision` and :func:`deprovision` handle one principal when an application or a
subscriber is added, gets a new password, is retired or revoked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lintas.audit import BlockingAuditLog
from lintas.directory.models import Application, AppStatus, DirectoryData, Subscriber
from lintas.kafka import KafkaConnection
from lintas.settings import Settings

from . import _audit
from ._admin import SecurityAdmin
from .acls import (
    AclPlan,
    Grant,
    application_grant,
    application_user,
    desired_grants,
    managed_users,
    subscriber_grant,
)
from .credentials import IssuedCredential, issue_credential
from .exceptions import NoPrincipal
from .principals import PrincipalNames, principal_of
from .reconcile import (
    SecurityPlan,
    apply_security,
    plan_security,
    read_broker,
    service_password_file,
    sync_principal,
)
from .services import ServiceTopology, service_grants

__all__ = [
    "SecurityContext",
    "deprovision",
    "load_directory",
    "provision",
    "sync_entry",
    "sync_security",
]


@dataclass(frozen=True, kw_only=True)
class SecurityContext:
    """Everything the reconciler needs from the settings, read once.

    Usage::

        ctx = SecurityContext.from_settings(settings)
        plan = sync_security(ctx, conn, data, dry_run=True)
    """

    names: PrincipalNames
    topology: ServiceTopology
    password_dir: Path
    iterations: int
    timeout: float = 30.0
    """Seconds each admin request to the broker may take (``LINTAS_KAFKA__REQUEST_TIMEOUT_MS``)."""
    audit: BlockingAuditLog | None = None
    """Where ACL and credential changes are recorded (None: not recorded, for tests)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> SecurityContext:
        from lintas.endpoints import postgres_dsn

        sec = settings.security
        return cls(
            names=PrincipalNames(sec.principal_prefix),
            topology=ServiceTopology.from_settings(settings),
            password_dir=sec.service_password_dir or settings.data_dir / "secrets" / "kafka-users",
            iterations=sec.scram_iterations,
            timeout=settings.kafka.request_timeout_ms / 1000,
            # The database is found when the first change is recorded, so a dry run needs
            # none.
            audit=BlockingAuditLog(lambda: postgres_dsn(settings)),
        )

    def grants(self, data: DirectoryData) -> dict[str, Grant]:
        """Every principal the directory and the services need."""
        services = service_grants(self.topology, self.names)
        return desired_grants(data, names=self.names, services=services)

    def managed(self, data: DirectoryData) -> Callable[[str], bool]:
        return managed_users(data, self.names)


async def load_directory(settings: Settings) -> DirectoryData:
    """The whole directory (no secrets), read without publishing anything."""
    from lintas.directory import Directory

    async with await Directory.open(settings, publish=False) as directory:
        return await directory.export_data()


def sync_security(
    ctx: SecurityContext, conn: KafkaConnection, data: DirectoryData, *, dry_run: bool = False
) -> SecurityPlan:
    """Make the broker's principals, ACLs and credentials match ``data``; returns the plan.

    Args:
        ctx: names, service topology and where service passwords go.
        conn: the platform's admin connection.
        data: the directory.
        dry_run: compute and return the plan without applying it.

    Raises:
        AdminRefused: ``conn`` may not manage ACLs and credentials.
        AuthenticationRefused: the broker refuses ``conn``'s credentials.
        SecurityApplyFailed: some changes were rejected.
    """
    grants = ctx.grants(data)
    managed = ctx.managed(data)
    with SecurityAdmin(conn, timeout=ctx.timeout) as admin:
        current, scram = read_broker(admin, managed)
        plan = plan_security(
            grants,
            current,
            scram,
            managed,
            service_password_known=lambda u: service_password_file(ctx.password_dir, u).exists(),
        )
        if not dry_run:
            apply_security(admin, plan, password_dir=ctx.password_dir, iterations=ctx.iterations)
    if not dry_run:
        _audit.write_entries(
            ctx.audit,
            _audit.acl_entries(plan.acls)
            + _audit.credential_entries(deleted=plan.drop_credentials)
            + _audit.credential_entries(issued=plan.service_credentials, to_file=True),
        )
    return plan


def _grant_of(
    entry: Application | Subscriber, ctx: SecurityContext
) -> tuple[str | None, Grant | None]:
    if isinstance(entry, Application):
        return application_user(entry, ctx.names), application_grant(entry, ctx.names)
    grant = subscriber_grant(entry, ctx.names)
    return (grant.user if grant else None), grant


def _no_principal(entry: Application | Subscriber) -> NoPrincipal:
    if isinstance(entry, Application):
        reason = (
            "it is retired"
            if entry.status is AppStatus.RETIRED
            else "it publishes through the HTTP gateway, which writes under its own principal "
            "(change its method to sdk or capture first)"
        )
        return NoPrincipal("application", entry.id, reason)
    return NoPrincipal(
        "subscriber", entry.name, "it receives webhooks; the deliverer reads its topic"
    )


def provision(
    ctx: SecurityContext, conn: KafkaConnection, entry: Application | Subscriber
) -> IssuedCredential:
    """Give an application or a Kafka subscriber its ACLs and a new SCRAM password.

    The password is returned once and stored nowhere but in the broker (salted, hashed);
    a previous password of the same principal stops working.

    Raises:
        NoPrincipal: a retired application or a webhook subscriber.
        AdminRefused, AuthenticationRefused, BrokerUnreachable, SecurityApplyFailed: from
            the broker.
    """
    user, grant = _grant_of(entry, ctx)
    if user is None or grant is None:
        raise _no_principal(entry)
    with SecurityAdmin(conn, timeout=ctx.timeout) as admin:
        acls = sync_principal(admin, user, grant, lambda u: u == user, drop_credential=False)
        credential = issue_credential(admin, user, iterations=ctx.iterations)
    entries = _audit.acl_entries(acls) + _audit.credential_entries(issued=[user])
    _audit.write_entries(ctx.audit, entries)
    return credential


def sync_entry(
    ctx: SecurityContext, conn: KafkaConnection, entry: Application | Subscriber
) -> list[str]:
    """Bring one entry's ACLs in line with it (a subscriber paused, disabled or resumed);
    its credential is left as it is. Returns the changes, as ``+ ...``/``- ...`` lines."""
    user, grant = _grant_of(entry, ctx)
    if user is None:
        return []
    with SecurityAdmin(conn, timeout=ctx.timeout) as admin:
        plan = sync_principal(admin, user, grant, lambda u: u == user, drop_credential=False)
    _audit.write_entries(ctx.audit, _audit.acl_entries(plan))
    return plan.lines()


def deprovision(
    ctx: SecurityContext,
    conn: KafkaConnection,
    entry: Application | Subscriber,
    *,
    keep_acls: bool = False,
) -> str | None:
    """Delete an entry's SCRAM credential and (unless ``keep_acls``) its ACLs.

    Returns:
        The principal (``User:app-siak``), or None when the entry never had one.
    """
    user, _ = _grant_of(entry, ctx)
    if user is None:
        return None
    with SecurityAdmin(conn, timeout=ctx.timeout) as admin:
        if keep_acls:
            admin.delete_credential(user)
            acls = AclPlan()
        else:
            acls = sync_principal(admin, user, None, lambda u: u == user)
    entries = _audit.acl_entries(acls) + _audit.credential_entries(deleted=[user])
    _audit.write_entries(ctx.audit, entries)
    return principal_of(user)

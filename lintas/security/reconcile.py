"""Make the broker's principals match the directory: ``lintas security sync``.

The plan is computed first (:func:`plan_security`, pure) and printed by ``--dry-run``;
applying it is idempotent, so a sync interrupted half-way is finished by the next one.
Only managed principals are touched (:func:`lintas.security.acls.managed_users`): the
platform's admin, other platforms' prefixes and hand-made principals are left alone.

Credentials:

- an application or subscriber that should exist but has no SCRAM credential is reported
  (its password is shown once, when it is issued: ``lintas apps kafka-password``);
- a managed user with a credential but nothing to do any more (a retired application, a
  subscriber switched to webhooks) loses it;
- a platform service without a credential, or without its password file, gets a new
  password written to ``<password dir>/<user>.password`` (owner-only), never printed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .acls import AclPlan, AclRule, Grant, GrantKind, plan_acls
from .credentials import DEFAULT_SCRAM_ITERATIONS, new_password, read_password_file
from .credentials import write_password_file as _write
from .principals import principal_of

if TYPE_CHECKING:
    from ._admin import SecurityAdmin

__all__ = [
    "SecurityPlan",
    "apply_security",
    "plan_security",
    "read_broker",
    "service_password_file",
    "sync_principal",
]


def service_password_file(directory: Path, user: str) -> Path:
    """Where a platform service's password lives: ``<directory>/<user>.password``."""
    return directory / f"{user}.password"


@dataclass(frozen=True, kw_only=True)
class SecurityPlan:
    """What ``lintas security sync`` changes, and what it cannot do by itself.

    Attributes:
        acls: ACLs to add and remove.
        drop_credentials: users whose SCRAM credential is deleted.
        service_credentials: service users that get a (new) password file and credential.
        missing_credentials: applications and subscribers without a credential: an
            operator issues one (its password is shown once).
        owners: user -> ``"application siak"`` etc., for messages.
    """

    acls: AclPlan
    drop_credentials: tuple[str, ...] = ()
    service_credentials: tuple[str, ...] = ()
    missing_credentials: tuple[str, ...] = ()
    owners: Mapping[str, str] | None = None

    @property
    def empty(self) -> bool:
        """True when applying would change nothing on the broker."""
        return self.acls.empty and not self.drop_credentials and not self.service_credentials

    def _owner(self, user: str) -> str:
        owner = (self.owners or {}).get(user)
        return f" ({owner})" if owner else ""

    def lines(self) -> list[str]:
        """One line per change, the way ``--dry-run`` prints them."""
        out = [f"{line[0]} acl {line[2:]}" for line in self.acls.lines()]
        out += [f"- credential {principal_of(u)}{self._owner(u)}" for u in self.drop_credentials]
        out += [
            f"+ credential {principal_of(u)}{self._owner(u)} (password file)"
            for u in self.service_credentials
        ]
        out += [
            f"! no credential {principal_of(u)}{self._owner(u)}: issue one (shown once)"
            for u in self.missing_credentials
        ]
        return out


def plan_security(
    grants: Mapping[str, Grant],
    current_acls: Iterable[AclRule],
    scram_users: Iterable[str],
    managed: Callable[[str], bool],
    *,
    service_password_known: Callable[[str], bool] = lambda user: False,
) -> SecurityPlan:
    """The changes that make the broker match ``grants``: pure, no I/O.

    Args:
        grants: every principal that should exist (:func:`lintas.security.desired_grants`).
        current_acls: the broker's ACLs (unmanaged ones are ignored).
        scram_users: users holding a SCRAM credential on the broker.
        managed: which users the plan may touch.
        service_password_known: whether a service's password file exists (a service
            without one cannot log in even if the broker has its credential).
    """
    desired = [rule for grant in grants.values() for rule in grant.rules]
    acls = plan_acls(desired, current_acls, managed)
    holders = {u for u in scram_users if managed(u)}
    drop = sorted(holders - set(grants))
    services = sorted(
        u
        for u, g in grants.items()
        if g.kind is GrantKind.SERVICE and (u not in holders or not service_password_known(u))
    )
    missing = sorted(
        u for u, g in grants.items() if g.kind is not GrantKind.SERVICE and u not in holders
    )
    owners = {u: f"{g.kind.value} {g.owner}" for u, g in grants.items()}
    return SecurityPlan(
        acls=acls,
        drop_credentials=tuple(drop),
        service_credentials=tuple(services),
        missing_credentials=tuple(missing),
        owners=owners,
    )


def read_broker(
    admin: SecurityAdmin, managed: Callable[[str], bool]
) -> tuple[set[AclRule], set[str]]:
    """The managed users' ACLs and the users holding SCRAM credentials."""
    return admin.acls(managed), admin.scram_users()


def apply_security(
    admin: SecurityAdmin,
    plan: SecurityPlan,
    *,
    password_dir: Path | None,
    iterations: int = DEFAULT_SCRAM_ITERATIONS,
) -> None:
    """Apply a plan: ACLs first (a new principal has its rights before it can log in),
    then credentials.

    Args:
        admin: the cluster's security admin.
        plan: from :func:`plan_security`.
        password_dir: where service password files go; required when the plan sets any.
        iterations: PBKDF2 rounds of new credentials.

    Raises:
        SecurityApplyFailed: some changes were rejected (the others are applied).
        ValueError: the plan sets service credentials but ``password_dir`` is None.
    """
    admin.create(plan.acls.add)
    admin.delete(plan.acls.remove)
    for user in plan.drop_credentials:
        admin.delete_credential(user)
    if plan.service_credentials and password_dir is None:
        raise ValueError("service credentials need a password directory")
    for user in plan.service_credentials:
        assert password_dir is not None
        path = service_password_file(password_dir, user)
        # Reuse a password already on disk: the broker may simply have lost its copy (a
        # purged local broker); otherwise write the new one before the broker knows it, so
        # a crash in between leaves a file the next sync installs rather than a lost secret.
        password = read_password_file(path)
        if password is None:
            password = new_password()
            _write(path, password)
        admin.set_password(user, password, iterations=iterations)


def sync_principal(
    admin: SecurityAdmin,
    user: str,
    grant: Grant | None,
    managed: Callable[[str], bool],
    *,
    drop_credential: bool | None = None,
) -> AclPlan:
    """Make one principal's ACLs match ``grant`` (None: it should have none at all).

    Args:
        admin: the cluster's security admin.
        user: the SCRAM user name.
        grant: what it should hold; None removes its ACLs (and, by default, its credential).
        managed: which users may be touched (``user`` must be one of them).
        drop_credential: delete its SCRAM credential; default: when ``grant`` is None.

    Returns:
        The ACL changes applied.
    """
    if not managed(user):
        raise ValueError(f"{principal_of(user)} is not a principal Lintas manages")
    desired = grant.rules if grant is not None else frozenset()
    current = admin.acls(lambda u: u == user)
    plan = plan_acls(desired, current, managed, only=[user])
    admin.create(plan.add)
    admin.delete(plan.remove)
    if drop_credential if drop_credential is not None else grant is None:
        admin.delete_credential(user)
    return plan

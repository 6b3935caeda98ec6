"""The ACLs the broker should hold, computed from the directory: pure functions, no I/O.

Each principal gets only what its job needs (Kafka's READ and WRITE imply DESCRIBE)::

    application  app-<id>    Write, Describe  topics with prefix opd.<its OPD>.
    subscriber   sub-<name>  Read             topic lintas.deliver.<name>
                                              group lintas-sub-<name>, prefix lintas-sub-<name>.
                             Write, Create    topic lintas.deliver.<name>.dlq (the subscriber
                                              SDK's own dead letters)
    service      svc-<role>   see :mod:`lintas.security.services`

No cluster-level right is granted: since Kafka 3.0 (KIP-679) an idempotent producer needs
Write on a topic, not IdempotentWrite on the cluster. Only applications that talk to Kafka
themselves (method ``sdk`` or ``capture``) get a principal: a ``gateway`` application
publishes through the gateway's. A retired application keeps no ACL and no credential; a
disabled subscriber keeps its credential but loses its ACLs until resumed; a webhook
subscriber has no principal (the deliverer reads its topic).

:func:`plan_acls` compares the desired rules with the broker's and returns what to add and
what to remove, for the managed principals only: ACLs of anyone else are never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from lintas.directory.models import (
    Application,
    AppStatus,
    DeliveryMode,
    DirectoryData,
    IntegrationMethod,
    Subscriber,
    SubscriberStatus,
)

from .principals import PrincipalNames, principal_of, user_of

__all__ = [
    "AclPlan",
    "AclRule",
    "Grant",
    "GrantKind",
    "Operation",
    "Pattern",
    "ResourceKind",
    "application_grant",
    "application_user",
    "desired_grants",
    "managed_users",
    "needs_principal",
    "plan_acls",
    "subscriber_grant",
    "subscriber_group",
]


class ResourceKind(StrEnum):
    """Kafka resource types, spelled as Strimzi's ``KafkaUser`` spells them."""

    TOPIC = "topic"
    GROUP = "group"
    CLUSTER = "cluster"
    TRANSACTIONAL_ID = "transactionalId"


class Pattern(StrEnum):
    """How a rule's name matches: the whole name, or every name starting with it."""

    LITERAL = "literal"
    PREFIXED = "prefix"


class Operation(StrEnum):
    """Kafka ACL operations, spelled as Strimzi spells them."""

    READ = "Read"
    WRITE = "Write"
    CREATE = "Create"
    DELETE = "Delete"
    ALTER = "Alter"
    DESCRIBE = "Describe"
    DESCRIBE_CONFIGS = "DescribeConfigs"
    ALTER_CONFIGS = "AlterConfigs"
    IDEMPOTENT_WRITE = "IdempotentWrite"
    CLUSTER_ACTION = "ClusterAction"
    ALL = "All"


@dataclass(frozen=True, order=True, slots=True)
class AclRule:
    """One ALLOW rule for one user; DENY rules are never desired.

    Attributes:
        user: the SCRAM user name (the principal is ``User:<user>``).
        allow: False only for DENY rules found on the broker (:func:`plan_acls` removes
            them from managed principals).
    """

    user: str
    kind: ResourceKind
    name: str
    pattern: Pattern
    operation: Operation
    host: str = "*"
    allow: bool = True

    @property
    def principal(self) -> str:
        return principal_of(self.user)

    def describe(self) -> str:
        """``User:app-siak Write topic opd.dukcapil.*`` (a prefix shown with ``*``)."""
        star = "*" if self.pattern is Pattern.PREFIXED else ""
        verb = self.operation.value if self.allow else f"DENY {self.operation.value}"
        host = "" if self.host == "*" else f" from {self.host}"
        return f"{self.principal} {verb} {self.kind.value} {self.name}{star}{host}"


class GrantKind(StrEnum):
    APPLICATION = "application"
    SUBSCRIBER = "subscriber"
    SERVICE = "service"


@dataclass(frozen=True, kw_only=True)
class Grant:
    """A principal that should exist, with its rules.

    Attributes:
        user: the SCRAM user name.
        kind: application, subscriber or service.
        owner: the application id, subscriber name or service role it stands for.
        rules: what it may do; empty for a disabled subscriber (credential kept).
    """

    user: str
    kind: GrantKind
    owner: str
    rules: frozenset[AclRule] = field(default_factory=frozenset)

    @property
    def principal(self) -> str:
        return principal_of(self.user)


def _rules(
    user: str,
    kind: ResourceKind,
    name: str,
    pattern: Pattern,
    *operations: Operation,
) -> set[AclRule]:
    return {AclRule(user, kind, name, pattern, op) for op in operations}


def application_user(app: Application, names: PrincipalNames) -> str:
    """The SCRAM user of an application: its recorded ``kafka_principal``, else ``app-<id>``."""
    if app.kafka_principal:
        return user_of(app.kafka_principal)
    return names.app(app.id)


def needs_principal(app: Application) -> bool:
    """True for an application that talks to Kafka itself (the SDK or a capture adapter)."""
    return app.method is not IntegrationMethod.GATEWAY


def subscriber_group(name: str) -> str:
    """The subscriber SDK's default consumer group (``lintas-sub-<name>``)."""
    return f"lintas-sub-{name}"


def application_grant(app: Application, names: PrincipalNames) -> Grant | None:
    """Write on its own OPD's topics (``opd.<opd>.``) only.

    None for a retired application, and for one that publishes through the HTTP gateway:
    the gateway writes for it under its own principal, so a Kafka credential would be an
    unused key that could only leak.
    """
    if app.status is AppStatus.RETIRED or not needs_principal(app):
        return None
    user = application_user(app, names)
    rules = _rules(
        user,
        ResourceKind.TOPIC,
        f"opd.{app.opd}.",
        Pattern.PREFIXED,
        Operation.WRITE,
        Operation.DESCRIBE,
    )
    return Grant(user=user, kind=GrantKind.APPLICATION, owner=app.id, rules=frozenset(rules))


def subscriber_grant(sub: Subscriber, names: PrincipalNames) -> Grant | None:
    """Read on its own delivery topic and consumer groups; None for a webhook subscriber.

    The group rules are the SDK's default group (literal) and the prefix ``<group>.`` for
    more groups of its own: a bare prefix ``lintas-sub-<name>`` would also match the
    groups of a subscriber whose name merely starts with this one's (``dinsos`` and
    ``dinsos-bansos``), and names hold no dots.
    """
    if sub.mode is not DeliveryMode.KAFKA:
        return None
    user = names.subscriber(sub.name)
    if sub.status is SubscriberStatus.DISABLED:
        return Grant(user=user, kind=GrantKind.SUBSCRIBER, owner=sub.name)
    group = subscriber_group(sub.name)
    topic = sub.delivery_topic
    rules = _rules(user, ResourceKind.TOPIC, topic, Pattern.LITERAL, Operation.READ)
    rules |= _rules(user, ResourceKind.GROUP, group, Pattern.LITERAL, Operation.READ)
    rules |= _rules(user, ResourceKind.GROUP, f"{group}.", Pattern.PREFIXED, Operation.READ)
    # The subscriber SDK dead-letters events its handler keeps failing on to a topic of its
    # own, and creates that topic the first time.
    rules |= _rules(
        user, ResourceKind.TOPIC, f"{topic}.dlq", Pattern.LITERAL, Operation.WRITE, Operation.CREATE
    )
    return Grant(user=user, kind=GrantKind.SUBSCRIBER, owner=sub.name, rules=frozenset(rules))


def desired_grants(
    data: DirectoryData, *, names: PrincipalNames, services: Iterable[Grant] = ()
) -> dict[str, Grant]:
    """Every principal that should exist, by user name: applications, subscribers, services.

    Args:
        data: the directory (``Directory.export_data()`` or a loaded YAML file).
        names: the principal prefix.
        services: the platform services' grants (:func:`lintas.security.services.service_grants`).

    Raises:
        ValueError: two entries map to the same principal (a ``kafka_principal`` set by
            hand that names another entry's principal).
    """
    grants: dict[str, Grant] = {}
    candidates: list[Grant | None] = [application_grant(a, names) for a in data.applications]
    candidates += [subscriber_grant(s, names) for s in data.subscribers]
    candidates += list(services)
    for grant in candidates:
        if grant is None:
            continue
        other = grants.get(grant.user)
        if other is not None:
            raise ValueError(
                f"{grant.kind.value} {grant.owner!r} and {other.kind.value} {other.owner!r} "
                f"both map to the Kafka principal {grant.principal}"
            )
        grants[grant.user] = grant
    return grants


def managed_users(data: DirectoryData, names: PrincipalNames) -> Callable[[str], bool]:
    """Which users' ACLs and credentials the reconciler owns.

    Every name under the prefix's kinds (``app-``, ``sub-``, ``svc-``), plus the principals
    set by hand on applications (``kafka_principal``), retired ones included so that
    retiring them removes their rights.
    """
    custom = {application_user(a, names) for a in data.applications if a.kafka_principal}

    def managed(user: str) -> bool:
        return user in custom or names.is_managed(user)

    return managed


@dataclass(frozen=True, kw_only=True)
class AclPlan:
    """What to change on the broker so that its ACLs match the desired ones."""

    add: tuple[AclRule, ...] = ()
    remove: tuple[AclRule, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.add and not self.remove

    def lines(self) -> list[str]:
        """``+ User:... Write topic opd.dinkes.*`` / ``- ...`` per change, sorted."""
        return [f"+ {r.describe()}" for r in self.add] + [f"- {r.describe()}" for r in self.remove]


def plan_acls(
    desired: Iterable[AclRule],
    current: Iterable[AclRule],
    managed: Callable[[str], bool],
    *,
    only: Iterable[str] | None = None,
) -> AclPlan:
    """The difference between the desired rules and the broker's, for managed users.

    Args:
        desired: every rule that should exist.
        current: the rules the broker holds (any principal; unmanaged ones are ignored).
        managed: which users the plan may touch (:func:`managed_users`).
        only: restrict the plan to these users (one application's add or retire).
    """
    scope = set(only) if only is not None else None

    def mine(rule: AclRule) -> bool:
        return managed(rule.user) and (scope is None or rule.user in scope)

    want = {r for r in desired if scope is None or r.user in scope}
    have = {r for r in current if mine(r)}
    return AclPlan(add=tuple(sorted(want - have)), remove=tuple(sorted(have - want)))

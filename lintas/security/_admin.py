"""The broker's ACLs and SCRAM credentials through confluent-kafka's AdminClient.

aiokafka has no SCRAM admin calls, so this one module speaks librdkafka. Every call is
bounded by a timeout, and a refused login surfaces at once as
:class:`AuthenticationRefused` (librdkafka reports it through ``error_cb`` and would
otherwise retry until the timeout). Before it reads credentials the client checks that
its principal may manage the cluster: librdkafka 2.16 aborts the process when
DescribeUserScramCredentials is refused, so that request is never sent unauthorised.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any, TypeVar

from lintas.kafka import KafkaConnection

from .acls import AclRule, Operation, Pattern, ResourceKind
from .exceptions import (
    AdminCallFailed,
    AdminRefused,
    AuthenticationRefused,
    BrokerUnreachable,
    SecurityApplyFailed,
)
from .principals import principal_of

__all__ = ["SecurityAdmin"]

T = TypeVar("T")

# The broker's error codes that mean "this principal may not do that".
_REFUSED = {"CLUSTER_AUTHORIZATION_FAILED", "TOPIC_AUTHORIZATION_FAILED", "SECURITY_DISABLED"}
# librdkafka's local errors for "no broker answered in time".
_UNREACHABLE = {"_TIMED_OUT", "_TRANSPORT", "_ALL_BROKERS_DOWN", "_RESOLVE"}
_POLL_S = 0.05


def _ck() -> Any:
    """confluent_kafka.admin, untyped: its stubs re-export nothing explicitly, and this
    module is the one place that speaks to it."""
    import importlib

    return importlib.import_module("confluent_kafka.admin")


def _confluent_maps() -> tuple[dict[ResourceKind, Any], dict[Pattern, Any], dict[Operation, Any]]:
    ck = _ck()

    kinds = {
        ResourceKind.TOPIC: ck.ResourceType.TOPIC,
        ResourceKind.GROUP: ck.ResourceType.GROUP,
        # librdkafka calls Kafka's CLUSTER resource BROKER (both are type 4).
        ResourceKind.CLUSTER: ck.ResourceType.BROKER,
        ResourceKind.TRANSACTIONAL_ID: ck.ResourceType.TRANSACTIONAL_ID,
    }
    patterns = {
        Pattern.LITERAL: ck.ResourcePatternType.LITERAL,
        Pattern.PREFIXED: ck.ResourcePatternType.PREFIXED,
    }
    ops = {op: getattr(ck.AclOperation, op.name) for op in Operation}
    return kinds, patterns, ops


class SecurityAdmin:
    """ACLs and SCRAM-SHA-512 credentials of one cluster, with bounded calls.

    Args:
        conn: the admin connection: a principal with Alter and Describe on the cluster.
        timeout: seconds each request may take.

    Usage::

        with SecurityAdmin(conn) as admin:
            rules = admin.acls(managed)
            admin.create(rules_to_add)
    """

    def __init__(self, conn: KafkaConnection, *, timeout: float = 30.0) -> None:
        ck = _ck()

        self.conn = conn
        self.timeout = timeout
        self.principal = principal_of(conn.username)
        self._auth_error: str | None = None
        self._lock = threading.Lock()
        config: dict[str, Any] = {
            **conn.confluent_config(),
            "error_cb": self._on_error,
            # librdkafka's own log lines (connection refused, ...) go to Python logging
            # instead of stderr: the errors raised here already say what failed.
            "logger": logging.getLogger("lintas.security.librdkafka"),
            "socket.timeout.ms": int(timeout * 1000),
        }
        self._client = ck.AdminClient(config)
        self._checked = False
        self._kinds, self._patterns, self._ops = _confluent_maps()

    def __enter__(self) -> SecurityAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to flush: librdkafka closes the client when it is collected."""
        self._client = None

    # -- plumbing -----------------------------------------------------------------------

    def _on_error(self, error: Any) -> None:
        if error.name() == "_AUTHENTICATION":
            with self._lock:
                self._auth_error = str(error.str())

    def _wait(self, future: Future[T], action: str) -> T:
        from confluent_kafka import KafkaException

        deadline = time.monotonic() + self.timeout
        while True:
            # poll() serves error_cb: a refused login shows there, not in the future.
            self._client.poll(0)
            if self._auth_error is not None:
                raise AuthenticationRefused(self.principal, self.conn.bootstrap, self._auth_error)
            try:
                return future.result(timeout=_POLL_S)
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise BrokerUnreachable(self.conn.bootstrap, action, self.timeout) from None
            except KafkaException as exc:
                error = exc.args[0]
                if error.name() in _REFUSED:
                    raise AdminRefused(self.principal, action) from exc
                if error.name() in _UNREACHABLE:
                    raise BrokerUnreachable(self.conn.bootstrap, action, self.timeout) from exc
                raise AdminCallFailed(action, error.name(), str(error.str())) from exc

    def _check_rights(self) -> None:
        """Refuse early unless the principal may describe and alter the cluster."""
        if self._checked:
            return
        ck = _ck()

        described = self._wait(
            self._client.describe_cluster(include_authorized_operations=True),
            "describe the cluster",
        )
        ops = set(described.authorized_operations or ())
        if (
            ck.AclOperation.ALL not in ops
            and not {ck.AclOperation.ALTER, ck.AclOperation.DESCRIBE} <= ops
        ):
            raise AdminRefused(self.principal, "manage ACLs and SCRAM credentials")
        self._checked = True

    def _binding(self, rule: AclRule) -> Any:
        ck = _ck()

        return ck.AclBinding(
            self._kinds[rule.kind],
            rule.name,
            self._patterns[rule.pattern],
            rule.principal,
            rule.host,
            self._ops[rule.operation],
            ck.AclPermissionType.ALLOW if rule.allow else ck.AclPermissionType.DENY,
        )

    def _rule(self, binding: Any) -> AclRule | None:
        ck = _ck()

        kind = next((k for k, v in self._kinds.items() if v == binding.restype), None)
        pattern = next(
            (p for p, v in self._patterns.items() if v == binding.resource_pattern_type), None
        )
        op = next((o for o, v in self._ops.items() if v == binding.operation), None)
        if kind is None or pattern is None or op is None or not binding.principal:
            return None
        if not binding.principal.startswith("User:"):
            return None
        return AclRule(
            binding.principal.removeprefix("User:"),
            kind,
            binding.name,
            pattern,
            op,
            binding.host,
            binding.permission_type == ck.AclPermissionType.ALLOW,
        )

    def _apply(self, futures: dict[Any, Future[Any]], label: Callable[[Any], str]) -> None:
        failures: list[tuple[str, str]] = []
        for key, future in futures.items():
            try:
                self._wait(future, label(key))
            except AdminCallFailed as exc:
                failures.append((label(key), f"{exc.code} ({exc.detail})"))
        if failures:
            raise SecurityApplyFailed(failures)

    # -- ACLs ---------------------------------------------------------------------------

    def acls(self, managed: Callable[[str], bool]) -> set[AclRule]:
        """Every ACL on the broker whose principal is a managed user."""
        ck = _ck()

        self._check_rights()
        every = ck.AclBindingFilter(
            ck.ResourceType.ANY,
            None,
            ck.ResourcePatternType.ANY,
            None,
            None,
            ck.AclOperation.ANY,
            ck.AclPermissionType.ANY,
        )
        bindings = self._wait(self._client.describe_acls(every), "describe ACLs")
        rules = (self._rule(b) for b in bindings)
        return {r for r in rules if r is not None and managed(r.user)}

    def create(self, rules: Iterable[AclRule]) -> None:
        """Create ACLs (creating one that exists is a no-op on the broker)."""
        bindings = {self._binding(r): r for r in rules}
        if not bindings:
            return
        self._check_rights()
        futures = self._client.create_acls(list(bindings))
        self._apply(futures, lambda b: "add " + bindings[b].describe())

    def delete(self, rules: Iterable[AclRule]) -> None:
        """Delete exactly these ACLs (each filter matches one binding)."""
        ck = _ck()

        filters: dict[Any, AclRule] = {}
        for rule in rules:
            b = self._binding(rule)
            flt = ck.AclBindingFilter(
                b.restype,
                b.name,
                b.resource_pattern_type,
                b.principal,
                b.host,
                b.operation,
                b.permission_type,
            )
            filters[flt] = rule
        if not filters:
            return
        self._check_rights()
        futures = self._client.delete_acls(list(filters))
        self._apply(futures, lambda f: "remove " + filters[f].describe())

    # -- SCRAM credentials ----------------------------------------------------------------

    def scram_users(self) -> set[str]:
        """Users that hold a SCRAM credential (any mechanism)."""
        self._check_rights()
        described = self._wait(
            self._client.describe_user_scram_credentials(), "describe SCRAM credentials"
        )
        return set(described)

    def set_password(self, user: str, password: str, *, iterations: int) -> None:
        """Create or replace ``user``'s SCRAM-SHA-512 credential (Kafka salts and hashes it)."""
        ck = _ck()

        self._check_rights()
        info = ck.ScramCredentialInfo(ck.ScramMechanism.SCRAM_SHA_512, iterations)
        upsert = ck.UserScramCredentialUpsertion(user, info, password.encode())
        futures = self._client.alter_user_scram_credentials([upsert])
        self._apply(futures, lambda u: f"set the SCRAM credential of {principal_of(u)}")

    def delete_credential(self, user: str) -> bool:
        """Delete ``user``'s SCRAM-SHA-512 credential; False if it had none."""
        ck = _ck()
        self._check_rights()
        deletion = ck.UserScramCredentialDeletion(user, ck.ScramMechanism.SCRAM_SHA_512)
        futures = self._client.alter_user_scram_credentials([deletion])
        try:
            self._wait(futures[user], f"delete the SCRAM credential of {principal_of(user)}")
        except AdminCallFailed as exc:
            if exc.code == "RESOURCE_NOT_FOUND":
                return False
            raise
        return True

"""Errors of Kafka principals, credentials, ACLs and the local certificate authority.

Tree (under :class:`lintas.exceptions.LintasError`)::

    SecurityError
    ├── BrokerUnreachable       the broker did not answer an admin request in time (retriable)
    ├── AuthenticationRefused   the broker refuses the credentials (wrong or revoked password)
    ├── AdminRefused            the principal may not manage ACLs or SCRAM credentials
    ├── AdminCallFailed         the broker answered an admin request with another error
    ├── NoPrincipal             the entry has no Kafka principal (retired, webhook subscriber)
    ├── SecurityApplyFailed     the broker rejected some of the ACL or credential changes
    └── TlsMaterialError        the local CA or the broker certificate cannot be read or made

Each names the principal (``User:app-siak``) and, where there is one, the resource, so an
operator sees at once who was refused on what; none is retried in a loop that hides it.
"""

from __future__ import annotations

from collections.abc import Sequence

from lintas.exceptions import LintasError

__all__ = [
    "AdminCallFailed",
    "AdminRefused",
    "AuthenticationRefused",
    "BrokerUnreachable",
    "NoPrincipal",
    "SecurityApplyFailed",
    "SecurityError",
    "TlsMaterialError",
]


class SecurityError(LintasError):
    """Base of the errors raised by :mod:`lintas.security`."""


class BrokerUnreachable(SecurityError):
    """The broker did not answer an admin request within the timeout."""

    retriable = True

    def __init__(self, bootstrap: str, action: str, timeout: float) -> None:
        super().__init__(
            f"Kafka at {bootstrap} did not answer ({action}) within {timeout:.0f} s.",
            hint="Is the broker running (`lintas status`)? Check LINTAS_KAFKA_BOOTSTRAP.",
        )
        self.bootstrap = bootstrap
        self.action = action
        self.timeout = timeout


class AuthenticationRefused(SecurityError):
    """The broker refuses the SASL credentials of ``principal``: wrong, revoked or unknown."""

    def __init__(self, principal: str, bootstrap: str, detail: str = "") -> None:
        reason = f": {detail}" if detail else ""
        super().__init__(
            f"Kafka at {bootstrap} refuses the credentials of {principal}{reason}.",
            hint="Check LINTAS_KAFKA__USERNAME and the password (or its file); a revoked "
            "credential stays refused until a new one is issued.",
        )
        self.principal = principal
        self.bootstrap = bootstrap
        self.detail = detail


class AdminRefused(SecurityError):
    """The connected principal lacks the cluster rights to manage ACLs or credentials."""

    def __init__(self, principal: str, action: str) -> None:
        super().__init__(
            f"Kafka refuses {principal} to {action}: it needs Alter and Describe on the "
            "cluster (a super-user such as the platform principal).",
            hint="Run this with the platform's admin credential (LINTAS_KAFKA__USERNAME), "
            "not an application's, subscriber's or service's.",
        )
        self.principal = principal
        self.action = action


class AdminCallFailed(SecurityError):
    """The broker answered an admin request with an error other than a refusal.

    Attributes:
        action: what was asked (``add User:app-siak Write topic opd.dukcapil.*``).
        code: Kafka's error name (``INVALID_REQUEST``, ``RESOURCE_NOT_FOUND``, ...).
    """

    def __init__(self, action: str, code: str, detail: str) -> None:
        super().__init__(f"Kafka could not {action}: {code} ({detail}).")
        self.action = action
        self.code = code
        self.detail = detail


class NoPrincipal(SecurityError):
    """An application or subscriber that has no Kafka principal to give a password to."""

    def __init__(self, kind: str, key: str, reason: str) -> None:
        super().__init__(f"The {kind} {key!r} has no Kafka principal: {reason}.")
        self.kind = kind
        self.key = key
        self.reason = reason


class SecurityApplyFailed(SecurityError):
    """Some changes were rejected; the others were applied (rerun ``lintas security sync``).

    Attributes:
        failures: ``(change, reason)`` pairs, e.g. ``("add User:app-siak Write topic
            opd.dukcapil.*", "INVALID_REQUEST ...")``.
    """

    def __init__(self, failures: Sequence[tuple[str, str]]) -> None:
        first = "; ".join(f"{what}: {why}" for what, why in failures[:3])
        more = f" (and {len(failures) - 3} more)" if len(failures) > 3 else ""
        super().__init__(
            f"Kafka rejected {len(failures)} security change(s): {first}{more}.",
            hint="Fix the cause and run `lintas security sync` again; it applies only what "
            "is still missing.",
        )
        self.failures = tuple(failures)


class TlsMaterialError(SecurityError):
    """A certificate or key of the local CA cannot be read, parsed or written."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(
            f"TLS material {path} cannot be used: {reason}.",
            hint="Delete the secrets/tls directory of the data directory; `lintas up` makes "
            "a new CA and broker certificate (clients must then trust the new ca.crt).",
        )
        self.path = path
        self.reason = reason

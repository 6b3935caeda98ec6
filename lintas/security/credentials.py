"""SCRAM passwords: generated here, shown once, stored only by the broker (salted, hashed).

Lintas never keeps an application's or subscriber's Kafka password: ``lintas apps add``
prints it once next to the API key, and a lost one is replaced
(``lintas apps kafka-password``), which ends the old one at once: Kafka holds one
SCRAM-SHA-512 credential per user. Platform services are the exception: their passwords
are written to owner-only files (``<data_dir>/secrets/kafka-users/svc-<role>.password``)
that the services read, as the platform's own password is.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from lintas.kafka import KafkaConnection

from ._admin import SecurityAdmin
from .principals import principal_of

__all__ = [
    "DEFAULT_SCRAM_ITERATIONS",
    "IssuedCredential",
    "issue_credential",
    "new_password",
    "read_password_file",
    "write_password_file",
]

DEFAULT_SCRAM_ITERATIONS = 8192
"""PBKDF2 rounds of the stored credential: twice Kafka's minimum (4096), still cheap for the
broker at connection time."""


def new_password() -> str:
    """32 random bytes, URL-safe: no quoting trouble in JAAS lines or environment files."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, kw_only=True)
class IssuedCredential:
    """A SCRAM credential just set on the broker; the only time its password is visible.

    The password is left out of ``repr`` so it never lands in a log or a traceback.
    """

    user: str
    password: str = field(repr=False)
    mechanism: str = "SCRAM-SHA-512"

    @property
    def principal(self) -> str:
        return principal_of(self.user)

    def connection(self, like: KafkaConnection) -> KafkaConnection:
        """``like`` (address, TLS) with this credential instead of its own."""
        return KafkaConnection(
            bootstrap=like.bootstrap,
            username=self.user,
            password=self.password,
            security_protocol=like.security_protocol,
            sasl_mechanism=self.mechanism,
            ssl_cafile=like.ssl_cafile,
            client_id=like.client_id,
        )


def issue_credential(
    admin: SecurityAdmin,
    user: str,
    *,
    password: str | None = None,
    iterations: int = DEFAULT_SCRAM_ITERATIONS,
) -> IssuedCredential:
    """Set a new SCRAM-SHA-512 password for ``user`` (the previous one stops working).

    Args:
        admin: the cluster's security admin.
        user: the SCRAM user name.
        password: the password to set; a new random one by default.
        iterations: PBKDF2 rounds Kafka uses to derive the stored keys.
    """
    secret = password if password is not None else new_password()
    admin.set_password(user, secret, iterations=iterations)
    return IssuedCredential(user=user, password=secret)


def write_password_file(path: Path, password: str) -> None:
    """Write a password readable by its owner only, replacing the file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(password + "\n")
    os.replace(tmp, path)


def read_password_file(path: Path) -> str | None:
    """The password in ``path``, or None when there is no such file (or it is empty)."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return text or None

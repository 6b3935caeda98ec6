"""Logins that carry the analyst roles, for ``lintas query``.

The analyst roles (``lintas_analyst``, ``lintas_analyst_pii``) cannot log in: a DBA grants
them to people's own logins. ``lintas query`` needs a login too, and a real one: a session
of the platform's own (super)user that ``SET ROLE``\\ s to an analyst role could ``RESET
ROLE`` in the very query it runs, so it would not prove what an analyst may do.

Unless ``LINTAS_SINK__QUERY_DSN`` names one, the platform provisions ``lintas_query``
(member of ``lintas_analyst``) and ``lintas_query_pii`` (member of ``lintas_analyst_pii``).
Their passwords are derived from the platform's own (HMAC-SHA256), so every process that
holds the platform credential computes the same password, nothing new has to be stored, and
no process can lock another out by resetting it; the server receives a SCRAM verifier,
never the password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import asyncpg
import orjson

from lintas.consumers.store.ddl import quote_ident, quote_literal
from lintas.postgres import connect

from .exceptions import AnalystLoginUnavailable

__all__ = [
    "QUERY_LOGINS",
    "connect_analyst",
    "derived_password",
    "ensure_login",
    "scram_verifier",
    "with_credentials",
]

QUERY_LOGINS: dict[bool, tuple[str, str]] = {
    False: ("lintas_query", "lintas_analyst"),
    True: ("lintas_query_pii", "lintas_analyst_pii"),
}
"""``pii`` -> (login, the analyst role it is a member of)."""

_SCRAM_ITERATIONS = 4096  # PostgreSQL's own default (scram_iterations)


def derived_password(platform_password: str, login: str) -> str:
    """The password of a provisioned login: HMAC-SHA256 of its name under the platform's."""
    mac = hmac.new(platform_password.encode(), b"lintas-query-login:" + login.encode(), "sha256")
    return mac.hexdigest()


def scram_verifier(password: str, *, salt: bytes | None = None) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802, 7677)."""
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${_SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def with_credentials(dsn: str, user: str, password: str) -> str:
    """``dsn`` with another user and password (host, port, database and options kept)."""
    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


async def ensure_login(admin: Any, login: str, role: str, password: str) -> None:
    """Create or update ``login`` with ``password``, a member of ``role`` and nothing else.

    Args:
        admin: a connection of a user allowed to create roles (the platform's).
    """
    await admin.execute(
        f"""
        DO $$
        BEGIN
            CREATE ROLE {quote_ident(login)} LOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$
        """
    )
    await admin.execute(
        f"ALTER ROLE {quote_ident(login)} WITH LOGIN "
        f"PASSWORD {quote_literal(scram_verifier(password))}"
    )
    await admin.execute(f"GRANT {quote_ident(role)} TO {quote_ident(login)}")


async def _connect(dsn: str, *, timezone: str, statement_timeout_s: float) -> Any:
    conn = await connect(
        dsn,
        application_name="lintas-query",
        timeout=10,
        command_timeout=statement_timeout_s + 5,
    )
    # Dates in the display time zone, as analysts read them; the limit is the server's own,
    # so a runaway query is cancelled where it runs.
    await conn.execute(
        "SELECT set_config('TimeZone', $1, false), set_config('statement_timeout', $2, false)",
        timezone,
        f"{int(statement_timeout_s * 1000)}",
    )
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name,
            schema="pg_catalog",
            encoder=lambda v: orjson.dumps(v).decode(),
            decoder=orjson.loads,
        )
    return conn


async def connect_analyst(
    platform_dsn: str,
    *,
    pii: bool,
    login_dsn: str | None,
    timezone: str,
    statement_timeout_s: float,
) -> Any:
    """A connection as an analyst: ``login_dsn``, or the provisioned login.

    Args:
        platform_dsn: the platform's DSN (provisions the login when needed).
        pii: connect with ``lintas_analyst_pii`` rights instead of ``lintas_analyst``.
        login_dsn: a configured analyst login; when given, the platform DSN is not used.
        timezone: the session's time zone.
        statement_timeout_s: the session's statement timeout.

    Raises:
        AnalystLoginUnavailable: the platform DSN has no password to derive one from, or
            the platform user may not create roles.
    """

    async def session(dsn: str) -> Any:
        return await _connect(dsn, timezone=timezone, statement_timeout_s=statement_timeout_s)

    if login_dsn is not None:
        return await session(login_dsn)
    platform_password = unquote(urlsplit(platform_dsn).password or "")
    if not platform_password:
        raise AnalystLoginUnavailable("the platform DSN has no password to derive one from")
    login, role = QUERY_LOGINS[pii]
    password = derived_password(platform_password, login)
    dsn = with_credentials(platform_dsn, login, password)
    try:
        return await session(dsn)
    except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError):
        pass  # not provisioned yet (or the platform password changed): provision it
    admin = await connect(platform_dsn, application_name="lintas-query", timeout=10)
    try:
        await ensure_login(admin, login, role, password)
    except asyncpg.InsufficientPrivilegeError as exc:
        raise AnalystLoginUnavailable(f"the platform user may not create roles ({exc})") from exc
    finally:
        await admin.close()
    return await session(dsn)

"""Portal users: who may sign in, with which role, and their password hashes.

Passwords are hashed with Argon2id through ``pwdlib`` (its recommended parameters); hashing
runs in a worker thread because it is deliberately slow (tens of milliseconds) and would
otherwise stall every other request on the event loop::

    users = PortalUsers(pool)
    await users.add("siti", Role.OPERATOR, "a long passphrase")
    user = await users.authenticate("siti", "a long passphrase")
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from .exceptions import InvalidUser, SignInFailed, UserExists, UserNotFound

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "PortalUser",
    "PortalUsers",
    "Role",
    "new_password",
]

# NIST SP 800-63B asks for at least 8; operators manage keys, so ask a little more.
MIN_PASSWORD_LENGTH = 10
_NAME = re.compile(r"^[a-z][a-z0-9._-]{1,62}$")
_HASHER = PasswordHash((Argon2Hasher(),))
# Verified against when the user does not exist, so a wrong name costs as long as a wrong
# password and response times do not reveal which names exist.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


class Role(StrEnum):
    """What a portal user may do."""

    OPERATOR = "operator"
    """Manage applications, keys, subscriptions and replays, and read everything."""
    VIEWER = "viewer"
    """Read everything (no personal data is shown anywhere), change nothing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PortalUser:
    name: str
    role: Role
    created_at: dt.datetime
    last_login_at: dt.datetime | None = None
    disabled: bool = False

    @property
    def is_operator(self) -> bool:
        return self.role is Role.OPERATOR


def new_password() -> str:
    """A random password for a generated account (about 120 bits)."""
    return secrets.token_urlsafe(15)


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise InvalidUser(
            "name",
            "must be 2-63 lowercase letters, digits, '.', '_' or '-', starting with a letter",
        )


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidUser("password", f"must be at least {MIN_PASSWORD_LENGTH} characters long")


def _user(row: Any) -> PortalUser:
    return PortalUser(
        name=row["name"],
        role=Role(row["role"]),
        created_at=row["created_at"],
        last_login_at=row["last_login_at"],
        disabled=row["disabled_at"] is not None,
    )


class PortalUsers:
    """The ``lintas.portal_users`` table, over an asyncpg pool the caller owns."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    async def add(self, name: str, role: Role | str, password: str, *, reset: bool = False) -> None:
        """Create a user, or with ``reset`` set the role and password of an existing one.

        Raises:
            InvalidUser: the name, role or password breaks a rule.
            UserExists: the name is taken and ``reset`` is False.
        """
        _check_name(name)
        try:
            role = Role(role)
        except ValueError:
            raise InvalidUser("role", "must be operator or viewer") from None
        _check_password(password)
        digest = await asyncio.to_thread(_HASHER.hash, password)
        async with self._pool.acquire() as conn:
            if reset:
                await conn.execute(
                    "INSERT INTO lintas.portal_users (name, role, password_hash) "
                    "VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET role = $2, "
                    "password_hash = $3, disabled_at = NULL, updated_at = now()",
                    name,
                    role.value,
                    digest,
                )
                return
            inserted = await conn.fetchval(
                "INSERT INTO lintas.portal_users (name, role, password_hash) VALUES ($1, $2, $3) "
                "ON CONFLICT (name) DO NOTHING RETURNING name",
                name,
                role.value,
                digest,
            )
        if inserted is None:
            raise UserExists(name)

    async def authenticate(self, name: str, password: str) -> PortalUser:
        """The user, when the name and password match and the user is enabled.

        Raises:
            SignInFailed: anything else (one error, so names cannot be probed).
        """
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM lintas.portal_users WHERE name = $1", name)
        stored = row["password_hash"] if row is not None else _DUMMY_HASH
        valid, updated = await asyncio.to_thread(_HASHER.verify_and_update, password, stored)
        if row is None or not valid or row["disabled_at"] is not None:
            raise SignInFailed()
        async with self._pool.acquire() as conn:
            # A hash made with older parameters is upgraded while the password is at hand.
            await conn.execute(
                "UPDATE lintas.portal_users SET last_login_at = now(), "
                "password_hash = coalesce($2, password_hash) WHERE name = $1",
                name,
                updated,
            )
        return _user(row)

    async def get(self, name: str) -> PortalUser:
        """Raises: UserNotFound."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM lintas.portal_users WHERE name = $1", name)
        if row is None:
            raise UserNotFound(name)
        return _user(row)

    async def list_users(self) -> list[PortalUser]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch("SELECT * FROM lintas.portal_users ORDER BY name")
        return [_user(r) for r in rows]

    async def count(self) -> int:
        async with self._pool.acquire() as conn:
            return int(await conn.fetchval("SELECT count(*) FROM lintas.portal_users"))

    async def set_disabled(self, name: str, disabled: bool) -> None:
        """Disable (or enable again) a user; a disabled user's sessions stop at once.

        Raises:
            UserNotFound: no such user.
        """
        async with self._pool.acquire() as conn:
            done = await conn.fetchval(
                "UPDATE lintas.portal_users SET disabled_at = CASE WHEN $2 THEN now() END, "
                "updated_at = now() WHERE name = $1 RETURNING name",
                name,
                disabled,
            )
        if done is None:
            raise UserNotFound(name)

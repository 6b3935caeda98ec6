"""Idempotency keys: a retried request gets the first answer and publishes nothing new.

A request carries a key when the client sends ``Idempotency-Key`` (any request) or when it
is in CloudEvents structured mode (the key is then made of its ``id`` s). Keys are scoped
per application and remembered in PostgreSQL for ``idempotency_ttl_s`` (24 h), so every
gateway process behind a load balancer sees them.

The life of a key (one row of ``lintas.gateway_idempotency``)::

    claim     after the request was found valid, before anything is published: the row
              is inserted without an answer; a concurrent request with the same key now
              gets IdempotencyKeyInUse (409), one for another body IdempotencyKeyReused
    complete  once the events are acknowledged or spooled: the 202 answer is stored;
              every retry within the TTL gets it back
    release   publishing failed (spool full, ...): the row goes, the client may retry

A claim whose request died with its process (no answer after ``abandon_after`` seconds) is
taken over by the next retry. That retry publishes again, with the same event ids (they
are derived from the key, see :func:`event_id_for`), so downstream de-duplication by id
drops the copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from lintas.postgres import create_pool

from .exceptions import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    IdempotencyUnavailable,
    MalformedRequest,
)

__all__ = [
    "IdempotencyStore",
    "StoredAnswer",
    "check_key",
    "event_id_for",
    "fingerprint",
]

log = logging.getLogger("lintas.gateway")

MAX_KEY_LENGTH = 255
# Per query: a database that does not answer within this is treated as away.
_QUERY_TIMEOUT_S = 5.0
_CLEANUP_INTERVAL_S = 600.0
# Event ids derived from idempotency keys: uuid5 in a namespace of our own.
_NAMESPACE = uuid.UUID("0f6f1f3e-5a39-4d8e-9c1e-6c696e746173")


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """The first answer given for a key: its status and its body, byte for byte."""

    status_code: int
    body: bytes


def check_key(value: str) -> str:
    """An ``Idempotency-Key`` header value, checked.

    Raises:
        MalformedRequest: empty, longer than 255 characters, or not printable ASCII.
    """
    key = value.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not (key.isascii() and key.isprintable()):
        raise MalformedRequest(
            "Idempotency-Key", f"must be 1-{MAX_KEY_LENGTH} printable ASCII characters"
        )
    return key


def fingerprint(*parts: bytes | str) -> bytes:
    """What a key stands for: a SHA-256 over the request's method, path, options and body."""
    digest = hashlib.sha256()
    for part in parts:
        chunk = part.encode() if isinstance(part, str) else part
        digest.update(len(chunk).to_bytes(8, "big"))
        digest.update(chunk)
    return digest.digest()


def event_id_for(app_id: str, key: str, index: int) -> str:
    """The event id of the ``index``-th event of a request with idempotency key ``key``.

    The same on every retry, so a copy published by a retry after a crash carries the id
    of the original and is dropped downstream.
    """
    return str(uuid.uuid5(_NAMESPACE, f"{app_id}\n{key}\n{index}"))


_CLAIM = """
INSERT INTO lintas.gateway_idempotency AS g (app_id, key, fingerprint, expires_at)
VALUES ($1, $2, $3, now() + make_interval(secs => $4))
ON CONFLICT (app_id, key) DO UPDATE
    SET fingerprint = EXCLUDED.fingerprint, status_code = NULL, response = NULL,
        created_at = now(), expires_at = EXCLUDED.expires_at
    WHERE g.expires_at <= now()
       OR (g.status_code IS NULL AND g.fingerprint = EXCLUDED.fingerprint
           AND g.created_at < now() - make_interval(secs => $5))
RETURNING 1
"""
_EXISTING = """
SELECT fingerprint, status_code, response FROM lintas.gateway_idempotency
WHERE app_id = $1 AND key = $2 AND expires_at > now()
"""


class IdempotencyStore:
    """Keys and first answers in PostgreSQL.

    Usage::

        store = IdempotencyStore(dsn, ttl_s=86_400, abandon_after_s=60)
        await store.start()
        prior = await store.claim("siak", key, fingerprint(...))
        if prior is None:
            ...publish...
            await store.complete("siak", key, 202, body)

    Args:
        dsn: a migrated Lintas database.
        ttl_s: how long a key is remembered.
        abandon_after_s: a claim without an answer this old belongs to a request that
            died; a retry takes it over.
    """

    def __init__(self, dsn: str, *, ttl_s: int, abandon_after_s: float) -> None:
        self._dsn = dsn
        self._ttl = float(ttl_s)
        self._abandon = float(abandon_after_s)
        self._pool: Any = None
        self._cleanup: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Open the pool (lazily connected: the gateway starts while the database is away)."""
        self._pool = await create_pool(
            self._dsn,
            application_name="lintas-gateway",
            min_size=0,
            max_size=10,
            timeout=_QUERY_TIMEOUT_S,
        )
        self._cleanup = asyncio.create_task(self._cleanup_loop(), name="gateway-idempotency")

    async def stop(self) -> None:
        task, self._cleanup = self._cleanup, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), _QUERY_TIMEOUT_S)
            except TimeoutError:
                pool.terminate()

    async def ping(self) -> bool:
        """Whether the database answers now (for ``/readyz``)."""
        try:
            await self._run("fetchval", "SELECT 1")
        except IdempotencyUnavailable:
            return False
        return True

    async def claim(self, app_id: str, key: str, print_: bytes) -> StoredAnswer | None:
        """Take ``key`` for a new request; the first answer if it was given before.

        Returns:
            None when the key is now this request's; the stored answer otherwise.

        Raises:
            IdempotencyKeyInUse: the first request with this key is still being handled.
            IdempotencyKeyReused: the key belongs to a request with another fingerprint.
            IdempotencyUnavailable: the database cannot be reached.
        """
        if await self._run("fetchval", _CLAIM, app_id, key, print_, self._ttl, self._abandon):
            return None
        row = await self._run("fetchrow", _EXISTING, app_id, key)
        if row is None:  # expired between the two statements: try once more
            if await self._run("fetchval", _CLAIM, app_id, key, print_, self._ttl, self._abandon):
                return None
            raise IdempotencyKeyInUse(key)
        if bytes(row["fingerprint"]) != print_:
            raise IdempotencyKeyReused(key)
        if row["status_code"] is None:
            raise IdempotencyKeyInUse(key)
        return StoredAnswer(int(row["status_code"]), bytes(row["response"]))

    async def complete(self, app_id: str, key: str, status_code: int, body: bytes) -> None:
        """Store the answer of a claimed key.

        Raises:
            IdempotencyUnavailable: the database cannot be reached (the claim stays and
                is taken over after ``abandon_after_s``).
        """
        await self._run(
            "execute",
            "UPDATE lintas.gateway_idempotency SET status_code = $3, response = $4 "
            "WHERE app_id = $1 AND key = $2",
            app_id,
            key,
            status_code,
            body,
        )

    async def release(self, app_id: str, key: str) -> None:
        """Give up a claim whose request published nothing; a retry may claim it again."""
        try:
            await self._run(
                "execute",
                "DELETE FROM lintas.gateway_idempotency "
                "WHERE app_id = $1 AND key = $2 AND status_code IS NULL",
                app_id,
                key,
            )
        except IdempotencyUnavailable as exc:
            log.warning("could not release idempotency key %r of %s: %s", key, app_id, exc)

    async def purge_expired(self) -> int:
        """Delete keys past their TTL; how many."""
        result = await self._run(
            "execute", "DELETE FROM lintas.gateway_idempotency WHERE expires_at <= now()"
        )
        return int(str(result).rsplit(" ", 1)[-1] or 0)

    async def _cleanup_loop(self) -> None:
        while True:
            await asyncio.sleep(_CLEANUP_INTERVAL_S)
            try:
                await self.purge_expired()
            except IdempotencyUnavailable as exc:
                log.warning("expired idempotency keys not purged: %s", exc)

    async def _run(self, method: str, sql: str, *args: Any) -> Any:
        if self._pool is None:
            raise IdempotencyUnavailable("the store is not started")
        try:
            async with asyncio.timeout(_QUERY_TIMEOUT_S):
                async with self._pool.acquire() as conn:
                    return await getattr(conn, method)(sql, *args)
        except (TimeoutError, OSError) as exc:
            raise IdempotencyUnavailable(f"{type(exc).__name__}: {exc}") from exc
        except Exception as exc:
            # asyncpg's connection and server errors; a bug in our SQL shows here too, and
            # must not turn into a 500 for the client, so it is logged in full.
            if not _is_connection_error(exc):
                log.exception("idempotency store query failed")
            raise IdempotencyUnavailable(f"{type(exc).__name__}: {exc}") from exc


def _is_connection_error(exc: BaseException) -> bool:
    import asyncpg

    return isinstance(
        exc,
        asyncpg.PostgresConnectionError
        | asyncpg.InterfaceError
        | asyncpg.CannotConnectNowError
        | asyncpg.TooManyConnectionsError,
    )

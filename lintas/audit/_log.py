"""Writing entries: inside the caller's transaction, over a pool, or from blocking code.

Three ways in, one statement:

- :func:`record` with the caller's connection: the entry commits or rolls back with the
  change it describes (the directory issues a key and records it in one transaction);
- :class:`AuditLog` for components that act outside a transaction of their own (the
  portal's sign-ins, ``lintas query``, dead-letter replays);
- :class:`BlockingAuditLog` for blocking code (``lintas.security`` runs librdkafka's
  admin calls in threads), which writes from a thread of its own.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from lintas.postgres import connect

from .actions import AuditAction
from .actor import current_actor
from .exceptions import AuditUnavailable

__all__ = ["AuditEntry", "AuditLog", "BlockingAuditLog", "record", "record_many"]

log = logging.getLogger("lintas.audit")

# The details go in as text and are cast in SQL: a connection with a jsonb codec of its
# own (the directory's) would otherwise encode the already encoded text a second time.
_INSERT = (
    "INSERT INTO lintas.audit_log (actor, action, target, details) "
    "VALUES ($1, $2, $3, $4::text::jsonb)"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One entry to write.

    Attributes:
        action: what was done.
        target: what it was done to (``app:siak``, ``User:app-siak``, ``lintas.dlq``).
        details: facts that make the entry useful later; never a secret (key ids, not
            keys; principals, not passwords).
        actor: who did it; default: :func:`~lintas.audit.current_actor` when created.
    """

    action: AuditAction
    target: str
    details: Mapping[str, Any] = field(default_factory=dict)
    actor: str = field(default_factory=current_actor)

    def row(self) -> tuple[str, str, str, str]:
        body = orjson.dumps(dict(self.details), default=str).decode()
        return (self.actor, self.action.value, self.target, body)


def _unavailable(entries: Sequence[AuditEntry], exc: BaseException) -> AuditUnavailable:
    first = entries[0]
    more = f" (and {len(entries) - 1} more)" if len(entries) > 1 else ""
    return AuditUnavailable(first.action.value, first.target + more, str(exc) or repr(exc))


async def record_many(conn: Any, entries: Iterable[AuditEntry]) -> None:
    """Write ``entries`` with ``conn``, in its transaction if one is open.

    Raises:
        AuditUnavailable: the database refused them (inside a transaction, the
            transaction is aborted too: the change does not happen unaudited).
    """
    batch = list(entries)
    if not batch:
        return
    import asyncpg

    try:
        await conn.executemany(_INSERT, [e.row() for e in batch])
    except (asyncpg.PostgresError, OSError) as exc:
        raise _unavailable(batch, exc) from exc


async def record(
    conn: Any,
    actor: str | None,
    action: AuditAction,
    target: str,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Write one entry with ``conn``, in its transaction if one is open.

    Args:
        conn: an asyncpg connection (a pool works too: one connection is taken for it).
        actor: who did it; None means :func:`~lintas.audit.current_actor`.
        action: what was done.
        target: what it was done to.
        details: what makes the entry useful later; never a secret.

    Raises:
        AuditUnavailable: the database refused the entry.
    """
    entry = AuditEntry(
        action=action, target=target, details=details or {}, actor=actor or current_actor()
    )
    await record_many(conn, [entry])


class AuditLog:
    """Entries written over a pool, or over a connection per call to a DSN.

    Usage::

        audit = AuditLog(pool=pool)                 # a service with a pool of its own
        audit = AuditLog(dsn=settings_dsn)          # a one-shot command
        await audit.record(None, AuditAction.DLQ_REPLAYED, "lintas.dlq", {"sent": 3})
    """

    def __init__(self, *, pool: Any = None, dsn: str | None = None) -> None:
        if (pool is None) == (dsn is None):
            raise ValueError("give either a pool or a DSN")
        self._pool = pool
        self._dsn = dsn

    async def record(
        self,
        actor: str | None,
        action: AuditAction,
        target: str,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Write one entry; see :func:`record`.

        Raises:
            AuditUnavailable: the database refused the entry or cannot be reached.
        """
        entry = AuditEntry(
            action=action, target=target, details=details or {}, actor=actor or current_actor()
        )
        await self.record_many([entry])

    async def record_many(self, entries: Sequence[AuditEntry]) -> None:
        """Write several entries in one transaction.

        Raises:
            AuditUnavailable: the database refused them or cannot be reached.
        """
        if not entries:
            return
        if self._pool is not None:
            async with self._pool.acquire() as conn, conn.transaction():
                await record_many(conn, entries)
            return
        assert self._dsn is not None
        try:
            conn = await connect(self._dsn, application_name="lintas-audit", timeout=10)
        except (TimeoutError, OSError) as exc:
            raise _unavailable(entries, exc) from exc
        except Exception as exc:  # asyncpg's refusals (password, database missing)
            raise _unavailable(entries, exc) from exc
        try:
            async with conn.transaction():
                await record_many(conn, entries)
        finally:
            await conn.close()


class BlockingAuditLog:
    """Entries written from blocking code: each call runs on a short-lived thread.

    A thread of its own works whether or not the calling thread runs an event loop
    (``lintas up`` calls in plain code, the CLI through :func:`asyncio.to_thread`).

    Args:
        dsn: the database, or a function that finds it when the first entry is written
            (so building a context that never records needs no database).
    """

    def __init__(self, dsn: str | Callable[[], str]) -> None:
        self._dsn = dsn

    def _resolve(self) -> str:
        return self._dsn if isinstance(self._dsn, str) else self._dsn()

    def record_many(self, entries: Sequence[AuditEntry]) -> None:
        """Write ``entries`` in one transaction; returns when they are committed.

        Raises:
            AuditUnavailable: the database refused them or cannot be reached.
        """
        if not entries:
            return
        failure: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(AuditLog(dsn=self._resolve()).record_many(entries))
            except BaseException as exc:  # handed to the caller's thread below
                failure.append(exc)

        worker = threading.Thread(target=run, name="lintas-audit", daemon=True)
        worker.start()
        worker.join()
        if failure:
            exc = failure[0]
            if isinstance(exc, AuditUnavailable):
                raise exc
            raise _unavailable(entries, exc) from exc

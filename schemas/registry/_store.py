"""PostgreSQL storage of the schema registry: SQL only, no rules.

Tables (migration ``0002_registry.sql``): ``lintas.registry_schemas`` (global ids),
``lintas.registry_versions`` (subject versions, soft-deleted flag) and
``lintas.registry_config`` (compatibility level and mode; subject ``''`` is the global one).

Reads go through :meth:`RegistryStore.read`; every write goes through
:meth:`RegistryStore.write`, one transaction holding a transaction-scoped advisory lock.
Writes are rare and small, so serialising them is cheap, and it is what makes 50
concurrent registrations of one schema end with one id and one version: the second
writer sees the first one's row.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from lintas.audit import AuditAction, record
from lintas.postgres import create_pool

from ._schema import StoredSchema, SubjectVersion
from .exceptions import RegistryError

__all__ = ["GLOBAL", "Queries", "RegistryStore"]

GLOBAL = ""
"""The ``registry_config`` key of the global compatibility level and mode."""

# Any constant works, as long as every registry process uses the same one; it differs
# from lintas.migrate's lock so a migration never waits on a registration.
_WRITE_LOCK = 0x4C5352454749  # "LSREGI"

_VERSION_COLUMNS = """
    v.subject, v.version, v.schema_id, v.deleted, s.schema_text, s.schema_type, s.fingerprint
"""


def _version(row: Any) -> SubjectVersion:
    return SubjectVersion(
        subject=row["subject"],
        version=row["version"],
        schema_id=row["schema_id"],
        text=row["schema_text"],
        schema_type=row["schema_type"],
        fingerprint=row["fingerprint"],
        deleted=row["deleted"],
    )


class Queries:
    """The registry's statements, bound to one connection (pooled, or a write transaction)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def ping(self) -> bool:
        return bool(await self._conn.fetchval("SELECT true"))

    async def audit(self, action: AuditAction, subject: str, details: dict[str, Any]) -> None:
        """An audit entry in this connection's transaction: it commits with the change."""
        await record(self._conn, None, action, f"subject:{subject}", details)

    # -- schemas -------------------------------------------------------------------------

    async def schema(self, schema_id: int) -> StoredSchema | None:
        row = await self._conn.fetchrow(
            "SELECT id, schema_text, schema_type, fingerprint FROM lintas.registry_schemas "
            "WHERE id = $1",
            schema_id,
        )
        if row is None:
            return None
        return StoredSchema(row["id"], row["schema_text"], row["schema_type"], row["fingerprint"])

    async def schema_ids(self, fingerprint: str, schema_type: str) -> list[int]:
        """Ids of the schema with this fingerprint, lowest first."""
        rows = await self._conn.fetch(
            "SELECT id FROM lintas.registry_schemas WHERE fingerprint = $1 AND schema_type = $2 "
            "ORDER BY id",
            fingerprint,
            schema_type,
        )
        return [r["id"] for r in rows]

    async def insert_schema(
        self, text: str, schema_type: str, fingerprint: str, *, schema_id: int | None = None
    ) -> int:
        """Store a new schema under the next id, or under ``schema_id`` (imports)."""
        if schema_id is None:
            schema_id = await self._conn.fetchval(
                "SELECT nextval('lintas.registry_schema_id_seq')::integer"
            )
        else:
            # Keep the sequence ahead of imported ids, so later ids never collide.
            await self._conn.execute(
                "SELECT setval('lintas.registry_schema_id_seq', GREATEST($1::bigint, "
                "(SELECT CASE WHEN is_called THEN last_value ELSE 0 END "
                "FROM lintas.registry_schema_id_seq)))",
                schema_id,
            )
        await self._conn.execute(
            "INSERT INTO lintas.registry_schemas (id, schema_text, schema_type, fingerprint) "
            "VALUES ($1, $2, $3, $4)",
            schema_id,
            text,
            schema_type,
            fingerprint,
        )
        return int(schema_id)

    async def drop_unused_schemas(self, schema_ids: Sequence[int]) -> list[int]:
        """Delete the schemas among ``schema_ids`` that no version points to any more."""
        rows = await self._conn.fetch(
            "DELETE FROM lintas.registry_schemas s WHERE s.id = ANY($1::integer[]) "
            "AND NOT EXISTS (SELECT 1 FROM lintas.registry_versions v WHERE v.schema_id = s.id) "
            "RETURNING s.id",
            list(schema_ids),
        )
        return [r["id"] for r in rows]

    async def schema_count(self) -> int:
        return int(await self._conn.fetchval("SELECT count(*) FROM lintas.registry_schemas"))

    # -- subjects and versions -----------------------------------------------------------

    async def subjects(self, *, include_deleted: bool) -> list[str]:
        rows = await self._conn.fetch(
            "SELECT DISTINCT subject FROM lintas.registry_versions "
            "WHERE $1 OR NOT deleted ORDER BY subject",
            include_deleted,
        )
        return [r["subject"] for r in rows]

    async def versions(self, subject: str) -> list[SubjectVersion]:
        """Every version of a subject, soft-deleted ones included, oldest first."""
        rows = await self._conn.fetch(
            f"SELECT {_VERSION_COLUMNS} FROM lintas.registry_versions v "
            "JOIN lintas.registry_schemas s ON s.id = v.schema_id "
            "WHERE v.subject = $1 ORDER BY v.version",
            subject,
        )
        return [_version(r) for r in rows]

    async def versions_of_schema(self, schema_id: int) -> list[SubjectVersion]:
        """Every subject version that uses a schema id, soft-deleted ones included."""
        rows = await self._conn.fetch(
            f"SELECT {_VERSION_COLUMNS} FROM lintas.registry_versions v "
            "JOIN lintas.registry_schemas s ON s.id = v.schema_id "
            "WHERE v.schema_id = $1 ORDER BY v.subject, v.version",
            schema_id,
        )
        return [_version(r) for r in rows]

    async def insert_version(self, subject: str, version: int, schema_id: int) -> None:
        await self._conn.execute(
            "INSERT INTO lintas.registry_versions (subject, version, schema_id) "
            "VALUES ($1, $2, $3)",
            subject,
            version,
            schema_id,
        )

    async def soft_delete(self, subject: str, versions: Sequence[int]) -> None:
        await self._conn.execute(
            "UPDATE lintas.registry_versions SET deleted = true "
            "WHERE subject = $1 AND version = ANY($2::integer[])",
            subject,
            list(versions),
        )

    async def hard_delete(self, subject: str, versions: Sequence[int]) -> None:
        await self._conn.execute(
            "DELETE FROM lintas.registry_versions "
            "WHERE subject = $1 AND version = ANY($2::integer[])",
            subject,
            list(versions),
        )

    # -- config and mode -----------------------------------------------------------------

    async def config(self, subject: str) -> tuple[str | None, str | None]:
        """(compatibility, mode) set for ``subject`` (or :data:`GLOBAL`); None when unset."""
        row = await self._conn.fetchrow(
            "SELECT compatibility, mode FROM lintas.registry_config WHERE subject = $1", subject
        )
        return (row["compatibility"], row["mode"]) if row else (None, None)

    async def all_config(self) -> dict[str, tuple[str | None, str | None]]:
        rows = await self._conn.fetch(
            "SELECT subject, compatibility, mode FROM lintas.registry_config"
        )
        return {r["subject"]: (r["compatibility"], r["mode"]) for r in rows}

    async def set_config(self, subject: str, column: str, value: str | None) -> None:
        """Set (or with ``None`` clear) ``compatibility`` or ``mode`` of a subject."""
        if column not in ("compatibility", "mode"):
            raise ValueError(f"unknown config column {column!r}")
        await self._conn.execute(
            f"INSERT INTO lintas.registry_config (subject, {column}) VALUES ($1, $2) "
            f"ON CONFLICT (subject) DO UPDATE SET {column} = EXCLUDED.{column}",
            subject,
            value,
        )
        await self._conn.execute(
            "DELETE FROM lintas.registry_config "
            "WHERE subject = $1 AND compatibility IS NULL AND mode IS NULL",
            subject,
        )


class RegistryStore:
    """The registry's PostgreSQL database: a pool, and read and write scopes over it.

    Args:
        dsn: the database; its migrations (``lintas migrate``) must have run.
        pool_size: the most connections held open.
    """

    def __init__(self, dsn: str, *, pool_size: int = 10) -> None:
        self._dsn = dsn
        self._pool_size = pool_size
        self._pool: Any = None

    async def start(self) -> None:
        """Open the pool and check that the registry's tables exist.

        Raises:
            RegistryError: the tables are missing (migrations have not run).
        """
        if self._pool is not None:
            return
        pool = await create_pool(
            self._dsn, application_name="lintas-registry", min_size=1, max_size=self._pool_size
        )
        found = await pool.fetchval("SELECT to_regclass('lintas.registry_versions') IS NOT NULL")
        if not found:
            await pool.close()
            raise RegistryError(
                "The schema registry's tables do not exist in this database.",
                hint="Run `lintas migrate` (or `lintas up`) first.",
            )
        self._pool = pool

    async def stop(self) -> None:
        """Close the pool (idempotent)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def _require_pool(self) -> Any:
        if self._pool is None:
            raise RuntimeError("the registry store is not started; call start() first")
        return self._pool

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Queries]:
        """A pooled connection for reads."""
        async with self._require_pool().acquire() as conn:
            yield Queries(conn)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Queries]:
        """A transaction holding the registry's write lock: writes happen one at a time."""
        async with self._require_pool().acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _WRITE_LOCK)
            yield Queries(conn)

    async def ping(self) -> bool:
        """Whether the database answers."""
        try:
            async with self.read() as q:
                return await q.ping()
        except Exception:  # any failure means "not healthy"; the caller only reports it
            return False

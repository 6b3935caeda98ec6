"""Apply Lintas's numbered migrations: idempotent, each in its own transaction.

A migration is a file ``lintas/migrations/NNNN_name.sql``. Applied versions are recorded in
``lintas.migrations``; an advisory lock serialises concurrent runs (two services starting
at once), so each migration runs exactly once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from lintas.postgres import connect

__all__ = ["Migration", "applied_versions", "available_migrations", "migrate"]

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any constant works; it only has to be the same for every Lintas process.
_LOCK_ID = 0x4C494E544153


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    """Every migration shipped with the package, in version order."""
    found = []
    for entry in resources.files("lintas.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(versions) != len(set(versions)):
        raise RuntimeError(f"duplicate migration versions in {versions}")
    return found


# Schema-qualified: an unqualified name would follow search_path ("$user" is lintas).
_BOOKKEEPING = """
CREATE SCHEMA IF NOT EXISTS lintas;
CREATE TABLE IF NOT EXISTS lintas.migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


async def applied_versions(dsn: str) -> set[int]:
    conn = await connect(dsn, application_name="lintas-migrate")
    try:
        await conn.execute(_BOOKKEEPING)
        rows = await conn.fetch("SELECT version FROM lintas.migrations")
        return {r["version"] for r in rows}
    finally:
        await conn.close()


async def migrate(dsn: str) -> list[Migration]:
    """Apply the migrations not yet applied; returns those applied by this call."""
    conn = await connect(dsn, application_name="lintas-migrate")
    applied: list[Migration] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
        try:
            await conn.execute(_BOOKKEEPING)
            done = {r["version"] for r in await conn.fetch("SELECT version FROM lintas.migrations")}
            for migration in available_migrations():
                if migration.version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO lintas.migrations (version, name) VALUES ($1, $2)",
                        migration.version,
                        migration.name,
                    )
                applied.append(migration)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)
    finally:
        await conn.close()
    return applied

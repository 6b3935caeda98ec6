"""The database is real: asyncpg round trip, logical WAL, UTC storage, migrations."""

from __future__ import annotations

import datetime as dt

from lintas.migrate import applied_versions, available_migrations, migrate
from lintas.postgres import connect


async def test_asyncpg_round_trip(fresh_db: str) -> None:
    conn = await connect(fresh_db)
    try:
        await conn.execute("CREATE TABLE t (id bigint PRIMARY KEY, at timestamptz, body jsonb)")
        at = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=7)))
        await conn.execute("INSERT INTO t VALUES (1, $1, $2)", at, '{"nik": "3273010101900001"}')
        row = await conn.fetchrow("SELECT at, body->>'nik' AS nik FROM t WHERE id = 1")
        assert row["at"] == at
        assert row["at"].utcoffset() == dt.timedelta(0), "session time zone is not UTC"
        assert row["nik"] == "3273010101900001"
    finally:
        await conn.close()


async def test_server_is_ready_for_logical_decoding(pg_dsn: str) -> None:
    conn = await connect(pg_dsn)
    try:
        assert await conn.fetchval("SHOW wal_level") == "logical"
        assert await conn.fetchval("SELECT current_setting('timezone')") == "UTC"
    finally:
        await conn.close()


async def test_migrations_are_idempotent(fresh_db: str) -> None:
    assert await migrate(fresh_db) == []  # fresh_db already migrated everything
    versions = await applied_versions(fresh_db)
    assert versions == {m.version for m in available_migrations()}

"""The audit log on a real PostgreSQL: append-only for everyone, and fed by the directory,
the schema registry and ``lintas query`` in the same transactions as their changes."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
import pytest_asyncio

from lintas.audit import AuditAction, AuditLog, acting_as, list_entries, record
from lintas.consumers.analytics import QueryAudit, QueryRefused, connect_analyst, run_query
from lintas.directory import Directory
from lintas.postgres import connect
from lintas.schemas import load_catalog
from lintas.schemas.registry import RegistryServer
from lintas.settings import Settings

KEMATIAN = load_catalog().get("dukcapil.kematian_dicatat.v1")


@pytest_asyncio.fixture(loop_scope="session")
async def db(fresh_db: str) -> AsyncIterator[Any]:
    conn = await connect(fresh_db)
    try:
        yield conn
    finally:
        await conn.close()


async def _entries(db: Any, *actions: str) -> list[Any]:
    return list(reversed(await list_entries(db, actions=actions, limit=1000)))


async def test_entries_cannot_be_changed_or_removed_by_the_platform_role(db: Any) -> None:
    assert await db.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    await record(db, "os:test", AuditAction.API_KEY_ISSUED, "app:siak", {"key_id": "k1"})
    # Even the platform's superuser, and even with ordinary triggers switched off.
    for sql in (
        "UPDATE lintas.audit_log SET actor = 'someone-else'",
        "DELETE FROM lintas.audit_log",
        "TRUNCATE lintas.audit_log",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await db.execute(sql)
        async with db.transaction():
            await db.execute("SET LOCAL session_replication_role = replica")
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await db.execute(sql)
    [entry] = await _entries(db)
    assert (entry.actor, entry.target, entry.details) == ("os:test", "app:siak", {"key_id": "k1"})


async def test_only_entries_past_a_year_may_be_deleted(db: Any) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    await db.execute(
        "INSERT INTO lintas.audit_log (at, actor, action, target) "
        "VALUES ($1, 'os:x', 'dlq.replayed', 'old')",
        old,
    )
    await record(db, "os:x", AuditAction.DLQ_REPLAYED, "new")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await db.execute("DELETE FROM lintas.audit_log WHERE target = 'new'")
    assert await db.execute("DELETE FROM lintas.audit_log WHERE target = 'old'") == "DELETE 1"
    assert [e.target for e in await _entries(db)] == ["new"]


async def test_the_directory_records_keys_and_secrets_with_the_change(
    fresh_db: str, db: Any, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, pg_dsn=fresh_db)
    async with await Directory.open(settings, pg_dsn=fresh_db, publish=False) as d:
        await d.add_opd({"code": "dukcapil", "name": "Disdukcapil"})
        app = {"id": "siak", "name": "SIAK", "opd": "dukcapil", "method": "gateway"}
        with acting_as("portal:siti"):
            _, first = await d.add_application(app)
        second = await d.issue_key("siak")
        await d.revoke_keys("siak", first.key_id if first else None)
        _, secret = await d.add_subscriber(
            {"name": "dinsos-bansos", "opd": "dukcapil", "mode": "webhook",
             "webhook_url": "https://dinsos.example/hook"}
        )  # fmt: skip
        rotated = await d.rotate_webhook_secret("dinsos-bansos")
        # A change that rolls back takes its entry with it.
        with pytest.raises(RuntimeError):
            async with d.transaction():
                await d.issue_key("siak")
                raise RuntimeError("operator cancelled")
        await d.retire_application("siak")
    assert first is not None and secret is not None
    entries = await _entries(db)
    assert [(e.action, e.target) for e in entries] == [
        ("api_key.issued", "app:siak"),
        ("api_key.rotated", "app:siak"),
        ("api_key.revoked", "app:siak"),
        ("webhook_secret.issued", "subscriber:dinsos-bansos"),
        ("webhook_secret.rotated", "subscriber:dinsos-bansos"),
        ("api_key.revoked", "app:siak"),
    ]
    assert entries[0].actor == "portal:siti"
    assert entries[1].actor.startswith("os:")
    assert entries[1].details["key_id"] == second.key_id
    assert list(entries[1].details["previous_keys"]) == [first.key_id]
    assert entries[2].details["key_ids"] == [first.key_id]
    assert entries[5].details == {"key_ids": [second.key_id], "application_retired": True}
    everything = orjson.dumps([e.details for e in entries]).decode()
    for token in (first.token, second.token, secret, rotated):
        assert token not in everything
    assert first.token.rpartition("_")[2] not in everything


async def test_the_registry_records_who_registered_and_deleted_a_schema(
    fresh_db: str, db: Any
) -> None:
    subject = KEMATIAN.subject
    async with (
        RegistryServer(fresh_db, port=0) as server,
        httpx.AsyncClient(base_url=server.url, auth=("ops-budi", "not-logged"), timeout=30) as http,
    ):
        body = {"schema": KEMATIAN.schema_str}
        answer = await http.post(f"/subjects/{subject}/versions", json=body)
        assert answer.status_code == 200, answer.text
        again = await http.post(f"/subjects/{subject}/versions", json=body)
        assert again.json()["id"] == answer.json()["id"]
        assert (await http.delete(f"/subjects/{subject}/versions/1")).status_code == 200
    entries = await _entries(db, "schema.")
    assert [(e.action, e.target) for e in entries] == [
        ("schema.registered", f"subject:{subject}"),  # once: the second was the same schema
        ("schema.deleted", f"subject:{subject}"),
    ]
    assert entries[0].actor == "registry:ops-budi@127.0.0.1"
    assert entries[0].details == {"version": 1, "id": answer.json()["id"]}
    assert "not-logged" not in orjson.dumps([e.actor for e in entries]).decode()


async def test_lintas_query_records_each_statement_before_it_runs(fresh_db: str, db: Any) -> None:
    audit = QueryAudit(log=AuditLog(dsn=fresh_db), login="lintas_query", pii=False)
    conn = await connect_analyst(
        fresh_db, pii=False, login_dsn=None, timezone="Asia/Jakarta", statement_timeout_s=30
    )
    try:
        with acting_as("os:analis-budi"):
            result = await run_query(conn, "SELECT 41 + 1 AS n", audit=audit)
            with pytest.raises(QueryRefused):
                await run_query(conn, "SELECT * FROM store.raw_events", audit=audit)
    finally:
        await conn.close()
    assert result.rows == [(42,)]
    entries = await _entries(db, "analyst.query")
    assert [(e.actor, e.target, e.details["sql"]) for e in entries] == [
        ("os:analis-budi", "login:lintas_query", "SELECT 41 + 1 AS n"),
        ("os:analis-budi", "login:lintas_query", "SELECT * FROM store.raw_events"),
    ]
    assert entries[0].details["pii"] is False


async def test_a_statement_that_cannot_be_recorded_does_not_run(
    fresh_db: str, tmp_path: Path
) -> None:
    from lintas.audit import AuditUnavailable

    gone = fresh_db.rpartition("/")[0] + "/no_such_database"
    audit = QueryAudit(log=AuditLog(dsn=gone), login="lintas_query", pii=False)
    conn = await connect_analyst(
        fresh_db, pii=False, login_dsn=None, timezone="Asia/Jakarta", statement_timeout_s=30
    )
    try:
        with pytest.raises(AuditUnavailable, match=r"analyst\.query"):
            await run_query(conn, "SELECT 1", audit=audit)
    finally:
        await conn.close()

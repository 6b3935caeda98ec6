"""Retention of the merged store on a real PostgreSQL: rows past their event type's
retention lose their personal data (or go), recent rows are untouched, the job is
idempotent, runs from the CLI and periodically, and is audited."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from lintas.audit import list_entries
from lintas.consumers.sinks.testing import canonical_event
from lintas.consumers.store import (
    RAW_COLUMNS,
    catalog_shape,
    connect_store,
    prepare_store,
    raw_row,
    run_retention,
    run_retention_periodically,
    store_policy,
    typed_row,
)
from lintas.consumers.store.rows import typed_columns
from lintas.schemas import example_event, load_catalog
from lintas.settings import RetentionSettings, TypeRetention

CATALOG = load_catalog()
KEMATIAN = CATALOG.get("dukcapil.kematian_dicatat.v1")
KK = CATALOG.get("dukcapil.kk_diperbarui.v1")
BANSOS = CATALOG.get("dinsos.bansos_disalurkan.v1")
NOW = dt.datetime.now(dt.UTC)
LONG_AGO = NOW - dt.timedelta(days=6 * 365)
SETTINGS = RetentionSettings(
    store_days=5 * 365,
    event_types={
        KK.id: TypeRetention(days=365),
        BANSOS.id: TypeRetention(days=30, action="delete"),
    },
)


@pytest_asyncio.fixture(loop_scope="session")
async def store(fresh_db: str) -> AsyncIterator[Any]:
    """The store's tables (as the sink creates them) on a fresh database; a connection."""
    conn = await connect_store(fresh_db, application_name="test-retention")
    await prepare_store(conn, catalog=CATALOG, timezone="Asia/Jakarta")
    try:
        yield conn
    finally:
        await conn.close()


async def _store_event(conn: Any, event_type: Any, payload: dict[str, Any], at: dt.datetime) -> str:
    """One canonical event in the raw table and its typed table, as the sink writes it."""
    event_id = str(uuid.uuid4())
    record = canonical_event(event_type, payload, event_id=event_id, time=at)
    niks = [p for p, kind in event_type.pii_fields.items() if kind == "nik"]
    raw = raw_row(record, nik_paths=niks, schema_id=1, topic="t", partition=0, offset=0)
    shape = catalog_shape(event_type)
    typed = typed_row(raw, record["payload"], shape)
    await conn.copy_records_to_table(
        "raw_events", schema_name="store", columns=RAW_COLUMNS, records=[raw]
    )
    await conn.copy_records_to_table(
        shape.table, schema_name="store", columns=typed_columns(shape), records=[typed]
    )
    return event_id


async def _raw(conn: Any, event_id: str) -> Any:
    return await conn.fetchrow("SELECT * FROM store.raw_events WHERE event_id = $1", event_id)


async def _typed(conn: Any, event_type: Any, event_id: str) -> Any:
    table = catalog_shape(event_type).table
    return await conn.fetchrow(f"SELECT * FROM store.{table} WHERE event_id = $1", event_id)


def _cli(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINTAS_")}
    env |= {
        "LINTAS_PG_DSN": dsn,
        "LINTAS_RETENTION__STORE_DAYS": str(SETTINGS.store_days),
        "LINTAS_RETENTION__EVENT_TYPES": json.dumps(
            {k: v.model_dump(mode="json") for k, v in SETTINGS.event_types.items()}
        ),
    }
    return subprocess.run(
        [sys.executable, "-m", "lintas.cli", "retention", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


async def test_rows_past_retention_lose_their_personal_data_and_recent_ones_keep_it(
    store: Any, fresh_db: str
) -> None:
    death = example_event(KEMATIAN)
    old_death = await _store_event(store, KEMATIAN, death, LONG_AGO)
    new_death = await _store_event(store, KEMATIAN, example_event(KEMATIAN), NOW)
    old_kk = await _store_event(store, KK, example_event(KK), NOW - dt.timedelta(days=400))
    old_aid = await _store_event(store, BANSOS, example_event(BANSOS), NOW - dt.timedelta(days=60))
    new_aid = await _store_event(store, BANSOS, example_event(BANSOS), NOW)
    before = await _typed(store, KEMATIAN, old_death)

    shown = _cli(fresh_db, "show", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)[BANSOS.id] == {
        "days": 30,
        "action": "delete",
        "source": "settings",
    }
    dry = _cli(fresh_db, "run", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    due = {k: v["rows"] for k, v in json.loads(dry.stdout)["event_types"].items()}
    assert due == {KEMATIAN.id: 1, KK.id: 1, BANSOS.id: 1}
    assert (await _raw(store, old_death))["pseudonymised_at"] is None  # a dry run changes nothing

    done = _cli(fresh_db, "run")
    assert done.returncode == 0, done.stderr
    assert "3 store row(s) done" in done.stdout

    raw = await _raw(store, old_death)
    typed = await _typed(store, KEMATIAN, old_death)
    pseudonym = raw["subject"]
    assert pseudonym.startswith("psn:") and death["nik"] not in pseudonym
    assert raw["niks"] == [] and raw["pseudonymised_at"] is not None
    payload = raw["payload"]
    assert not set(KEMATIAN.pii_fields) & set(payload)
    assert payload["tanggal_kematian"] == death["tanggal_kematian"].isoformat()
    assert death["nik"] not in json.dumps(payload) and death["nama"] not in json.dumps(payload)
    # The typed row: NIK and family card as the same keyed pseudonym, the rest gone.
    assert typed["nik"] == pseudonym
    assert typed["nomor_kk"].startswith("psn:") and typed["nomor_kk"] != pseudonym
    for column in ("nama", "tanggal_lahir", "tempat_kematian", "sebab_kematian"):
        assert typed[column] is None, column
    for column in ("jenis_kelamin", "tanggal_kematian", "kode_wilayah", "nomor_akta_kematian"):
        assert typed[column] == before[column], column
    # Recent rows are untouched.
    assert (await _raw(store, new_death))["subject"] == example_event(KEMATIAN)["nik"]
    assert (await _typed(store, KEMATIAN, new_death))["nama"] is not None
    # Nested personal data: removed from every member, the rest of each member kept.
    members = (await _typed(store, KK, old_kk))["anggota"]
    assert [set(m) for m in members] == [{"jenis_kelamin", "hubungan"}] * 3
    # Deleted where the policy says so.
    assert await _raw(store, old_aid) is None and await _typed(store, BANSOS, old_aid) is None
    assert await _raw(store, new_aid) is not None

    again = await run_retention(
        store, store_policy(SETTINGS, CATALOG), audit_days=730, now=dt.datetime.now(dt.UTC)
    )
    assert again.rows == 0 and not again.busy
    [entry] = await list_entries(store, actions=("retention.applied",))
    assert entry.details["event_types"][KEMATIAN.id]["rows"] == 1
    assert entry.details["event_types"][BANSOS.id]["action"] == "delete"


async def test_the_periodic_job_handles_rows_that_fall_due(store: Any, fresh_db: str) -> None:
    old = await _store_event(store, KEMATIAN, example_event(KEMATIAN), LONG_AGO)
    job = asyncio.create_task(
        run_retention_periodically(
            fresh_db,
            SETTINGS.model_copy(update={"interval_s": 0.2}),
            audit_days=730,
            event_types=CATALOG,
        )
    )
    try:
        for _ in range(300):
            if (await _raw(store, old))["pseudonymised_at"] is not None:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the periodic job did not pseudonymise a row past retention")
        late = await _store_event(store, BANSOS, example_event(BANSOS), LONG_AGO)
        for _ in range(300):
            if await _raw(store, late) is None:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the periodic job did not delete a row that fell due later")
    finally:
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)
    assert (await _typed(store, KEMATIAN, old))["nama"] is None


async def test_a_second_run_while_one_is_busy_does_nothing(store: Any, fresh_db: str) -> None:
    from lintas.consumers.store.retention import RETENTION_LOCK

    await _store_event(store, KEMATIAN, example_event(KEMATIAN), LONG_AGO)
    other = await connect_store(fresh_db, application_name="test-retention-holder")
    try:
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", RETENTION_LOCK)
        busy = await run_retention(store, store_policy(SETTINGS, CATALOG), audit_days=730)
        assert busy.busy and busy.rows == 0
        cli = _cli(fresh_db, "run")
        assert cli.returncode == 1 and "busy" in cli.stdout
    finally:
        await other.close()
    done = await run_retention(store, store_policy(SETTINGS, CATALOG), audit_days=730)
    assert done.rows == 1

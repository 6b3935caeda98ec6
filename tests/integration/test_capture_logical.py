"""PostgreSQL logical decoding against the real cluster (wal_level=logical) and Kafka:
snapshot and stream, changes during the snapshot, start-up checks, a dropped slot, a
dropped connection. Every slot made here is dropped with its database."""

from __future__ import annotations

import asyncio
import decimal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from capture_helpers import (
    PAJAK,
    SETORAN_POSTGRES,
    CaptureEnv,
    SourceDb,
    capture_env,
    database_block,
    insert_setoran,
    pg_db,
    running,
    setoran_row,
    update_setoran,
)

from lintas.postgres import connect
from lintas.producers.capture import (
    CaptureRunner,
    PositionLost,
    SourceMisconfigured,
    load_source,
    slot_lag,
)
from lintas.schemas import decode

__all__ = ["capture_env", "pg_db"]  # fixtures used here


def _names(db: SourceDb) -> str:
    return "lintas_" + db.name.removeprefix("lintas_test_")


def _source(env: CaptureEnv, db: SourceDb, **extra: Any) -> Path:
    name = _names(db)
    body = {
        "opd": "bapenda",
        "app": "simda",
        "database": database_block(db),
        "mechanism": "logical",
        "logical": {"slot": name, "publication": name},
        "tables": [{"mapping": "ta_setoran.mapping.yaml"}],
        **extra,
    }
    return env.source_file("simda-pg", body)


async def _prepare(db: SourceDb, *, publish: bool = True) -> None:
    await db.execute(SETORAN_POSTGRES)
    if publish:
        await db.execute(f"CREATE PUBLICATION {_names(db)} FOR TABLE ta_setoran")


async def _caught_up(db: SourceDb, check: Any) -> None:
    """Wait until the slot is confirmed past everything written so far."""
    (row,) = await db.fetch("SELECT pg_current_wal_lsn() AS lsn")
    for _ in range(600):
        check()
        (slot,) = await db.fetch(
            "SELECT confirmed_flush_lsn >= $1::pg_lsn AS done FROM pg_replication_slots "
            "WHERE slot_name = $2",
            row["lsn"],
            _names(db),
        )
        if slot["done"]:
            return
        await asyncio.sleep(0.2)
    raise AssertionError("the slot did not catch up")


async def test_snapshot_then_changes_each_once_and_the_slot_follows(
    pg_db: SourceDb, capture_env: CaptureEnv
) -> None:
    db, env = pg_db, capture_env
    await _prepare(db)
    await insert_setoran(db, [setoran_row(i) for i in range(450)])
    async with running(env, _source(env, db)) as cap:
        await env.wait_for(PAJAK, 450, check=cap.check)
        await insert_setoran(db, [setoran_row(i) for i in range(450, 600)])
        await insert_setoran(db, [setoran_row(600, kd_pajak="99")])
        await update_setoran(db, list(range(1, 101)), 5000)
        reads = await env.wait_for(PAJAK, 450 + 150 + 100, check=cap.check)
        dlq = await env.read_dlq()
        # Idle now: the slot is confirmed up to the end of the WAL (heartbeats included).
        conn = await connect(db.dsn)
        try:
            for _ in range(100):
                lag = await slot_lag(conn, _names(db))
                assert lag is not None
                if lag.lag_bytes < 64 * 1024:
                    break
                await asyncio.sleep(0.2)
        finally:
            await conn.close()
    assert lag.lag_bytes < 64 * 1024, lag
    ids = Counter(r.event_id for r in reads)
    assert len(ids) == 700 and max(ids.values()) == 1
    (letter,) = dlq
    assert letter.key == b"601" and letter.headers["lintas.dlq.field"] == b"jenis_pajak"
    corrected = [decode(r.value, PAJAK.parsed_schema) for r in reads]
    assert sum(1 for e in corrected if e["denda"] == decimal.Decimal(5000)) == 100


async def test_changes_during_the_snapshot_are_neither_lost_nor_doubled(
    pg_db: SourceDb, capture_env: CaptureEnv
) -> None:
    db, env = pg_db, capture_env
    await _prepare(db)
    rows = 1200
    await insert_setoran(db, [setoran_row(i) for i in range(rows)])
    updates = 0
    async with running(env, _source(env, db)) as cap:
        # Correct payments while the snapshot reads its 6 chunks: each change lands either
        # in a chunk read after it, or in the stream; the final state must be the last event.
        for round_ in range(1, 6):
            await update_setoran(db, list(range(round_, rows + 1, 7)), 1000 * round_)
            updates += len(range(round_, rows + 1, 7))
            await asyncio.sleep(0.05)
        final = {
            r["id_setoran"]: r["denda"]
            for r in await db.fetch("SELECT id_setoran, denda FROM ta_setoran")
        }
        # Every row at least once, and the slot confirmed past the last update: all sent.
        await env.wait_for(PAJAK, rows, check=cap.check)
        await _caught_up(db, cap.check)
        reads = await env.read(PAJAK)
        stats = cap.runner.stats
    ids = Counter(r.event_id for r in reads)
    assert max(ids.values()) == 1
    assert rows <= len(ids) <= rows + updates
    last: dict[str, decimal.Decimal] = {}
    for read in sorted(reads, key=lambda r: (r.partition, r.offset)):
        event = decode(read.value, PAJAK.parsed_schema)
        last[event["ntpd"]] = event["denda"]
    expected = {setoran_row(i - 1)[0]: denda for i, denda in final.items()}
    assert last == expected
    assert stats.changes == len(ids)


async def test_a_table_outside_the_publication_is_refused_with_the_statement(
    pg_db: SourceDb, capture_env: CaptureEnv
) -> None:
    db, env = pg_db, capture_env
    await _prepare(db, publish=False)
    runner = CaptureRunner(
        load_source(_source(env, db)), env.settings, connection=env.conn, registry=env.registry_url
    )
    with pytest.raises(SourceMisconfigured) as caught:
        await asyncio.wait_for(runner.run(asyncio.Event()), 120)
    assert f"CREATE PUBLICATION {_names(db)} FOR TABLE public.ta_setoran" in caught.value.message


async def test_delete_mappings_need_replica_identity_full(
    pg_db: SourceDb, capture_env: CaptureEnv
) -> None:
    db, env = pg_db, capture_env
    await db.execute(
        "CREATE TABLE tb_izin (id_izin serial PRIMARY KEY, no_izin text, nib text, "
        "nama_usaha text, nama_pj text, alamat text, kd_kelurahan text, status text, "
        "no_sk_cabut text, tgl_terbit timestamp, tgl_update timestamp)"
    )
    await db.execute(f"CREATE PUBLICATION {_names(db)} FOR TABLE tb_izin")
    source = env.source_file(
        "perizinan-pg",
        {
            "opd": "dpmptsp",
            "app": "sicantik",
            "database": database_block(db),
            "mechanism": "logical",
            "logical": {"slot": _names(db), "publication": _names(db)},
            "tables": [{"mapping": "tb_izin.mapping.yaml"}],
        },
    )
    runner = CaptureRunner(
        load_source(source), env.settings, connection=env.conn, registry=env.registry_url
    )
    with pytest.raises(SourceMisconfigured) as caught:
        await asyncio.wait_for(runner.run(asyncio.Event()), 120)
    assert "ALTER TABLE public.tb_izin REPLICA IDENTITY FULL" in caught.value.message


async def test_a_dropped_slot_says_how_to_resnapshot_and_a_dropped_connection_loses_nothing(
    pg_db: SourceDb, capture_env: CaptureEnv
) -> None:
    db, env = pg_db, capture_env
    await _prepare(db)
    source = _source(env, db, snapshot=False)
    async with running(env, source) as cap:
        await insert_setoran(db, [setoran_row(i) for i in range(100)])
        await env.wait_for(PAJAK, 100, check=cap.check)
        # The server drops the capture's connection: it reconnects and goes on.
        killed = await db.fetch(
            "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity "
            "WHERE application_name = 'lintas-capture-simda-pg' AND datname = $1",
            db.name,
        )
        assert killed and all(r["ok"] for r in killed)
        await insert_setoran(db, [setoran_row(i) for i in range(100, 200)])
        reads = await env.wait_for(PAJAK, 200, check=cap.check)
    assert len({r.event_id for r in reads}) == 200

    await db.execute("SELECT pg_drop_replication_slot($1)", _names(db))
    runner = CaptureRunner(
        load_source(source), env.settings, connection=env.conn, registry=env.registry_url
    )
    with pytest.raises(PositionLost) as caught:
        await asyncio.wait_for(runner.run(asyncio.Event()), 120)
    assert "the slot was dropped" in caught.value.message
    assert f"lintas capture reset {source} --snapshot" in (caught.value.hint or "")

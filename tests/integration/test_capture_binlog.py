"""MariaDB binlog capture against a real MariaDB and Kafka: snapshot, then changes; the
start-up checks; a purged position; a restart of the server; a dropped connection."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from capture_helpers import (
    IZIN_DICABUT,
    IZIN_TERBIT,
    PAJAK,
    SETORAN_MARIADB,
    CaptureEnv,
    SourceDb,
    capture_env,
    database_block,
    insert_setoran,
    maria_db,
    mariadb,
    running,
    setoran_row,
    update_setoran,
)

from lintas.producers.capture import (
    BinlogPosition,
    CaptureRunner,
    MappingInvalid,
    PositionLost,
    SourceMisconfigured,
    load_source,
)
from lintas.producers.capture.state import CaptureState
from lintas.schemas import decode

__all__ = ["capture_env", "maria_db", "mariadb"]  # fixtures used here


def _source(env: CaptureEnv, db: SourceDb, **extra: Any) -> Path:
    body = {
        "opd": "bapenda",
        "app": "simda",
        "database": database_block(db),
        "mechanism": "binlog",
        "tables": [{"mapping": "ta_setoran.mapping.yaml"}],
        **extra,
    }
    return env.source_file("simda", body)


def _stored_binlog(env: CaptureEnv, source: str) -> str:
    from lintas.producers.capture.status import read_positions

    assert env.settings.capture.state_dir is not None
    return str(read_positions(env.settings.capture.state_dir, source)["binlog"]["value"]["file"])


async def test_snapshot_then_changes_each_once_and_a_bad_row_to_the_dlq(
    maria_db: SourceDb, capture_env: CaptureEnv
) -> None:
    db, env = maria_db, capture_env
    await db.execute(SETORAN_MARIADB)
    await insert_setoran(db, [setoran_row(i) for i in range(450)])  # 3 snapshot chunks
    async with running(env, _source(env, db)) as cap:
        await env.wait_for(PAJAK, 450, check=cap.check)  # the snapshot is read
        await insert_setoran(db, [setoran_row(i) for i in range(450, 600)])
        await insert_setoran(db, [setoran_row(600, kd_pajak="99")])  # maps to no jenis_pajak
        await insert_setoran(db, [setoran_row(i) for i in range(601, 650)])
        await update_setoran(db, list(range(1, 101)), 5000)
        reads = await env.wait_for(PAJAK, 450 + 150 + 49 + 100, check=cap.check)
        dlq = await env.read_dlq()
        stats = cap.runner.stats
    ids = Counter(r.event_id for r in reads)
    assert len(ids) == 749
    assert max(ids.values()) == 1, "a clean run sends each change once"
    assert stats.dead == 1 and stats.events == 749

    (letter,) = dlq
    assert letter.key == b"601"  # the row's primary key
    assert letter.headers["lintas.dlq.reason"] == b"unmappable_row"
    assert letter.headers["lintas.dlq.field"] == b"jenis_pajak"
    assert b"'99'" in letter.headers["lintas.dlq.message"]
    assert orjson.loads(letter.value)["kd_pajak"] == "99"

    by_key: dict[bytes, list[dict[str, Any]]] = {}
    for read in sorted(reads, key=lambda r: (r.partition, r.offset)):
        by_key.setdefault(read.key, []).append(decode(read.value, PAJAK.parsed_schema))
    first = decode(reads[0].value, PAJAK.parsed_schema)
    assert first["kode_wilayah"] == "32.73.02.1003"
    assert first["npwpd"] == first["npwpd"].strip()
    # The legacy DATETIME is WIB: 10:12 local is 03:12 UTC.
    when = first["dibayar_pada"]
    assert when.tzinfo is not None and when.astimezone(dt.UTC).hour == 3
    corrected = [e for events in by_key.values() for e in events if e["denda"] == 5000]
    assert len(corrected) == 100
    assert all(e["jumlah_dibayar"] == e["pokok_pajak"] + decimal.Decimal(5000) for e in corrected)


async def test_inserts_updates_and_deletes_pick_their_event_type(
    maria_db: SourceDb, capture_env: CaptureEnv
) -> None:
    db, env = maria_db, capture_env
    await db.execute(
        "CREATE TABLE tb_izin (id_izin INT AUTO_INCREMENT PRIMARY KEY, no_izin VARCHAR(40), "
        "nib CHAR(13), nama_usaha VARCHAR(100), nama_pj VARCHAR(100), alamat VARCHAR(200), "
        "kd_kelurahan CHAR(10), status VARCHAR(10), no_sk_cabut VARCHAR(40), "
        "tgl_terbit DATETIME, tgl_update DATETIME)"
    )
    source = env.source_file(
        "perizinan",
        {
            "opd": "dpmptsp",
            "app": "sicantik",
            "database": database_block(db),
            "mechanism": "binlog",
            "snapshot": False,
            "tables": [{"mapping": "tb_izin.mapping.yaml"}],
        },
    )
    row = (
        "503/0412-PB/DPMPTSP/2025",
        "1207250034517",
        "Warung Bu Imas",
        "Imas",
        "Jl. Setiabudi 201",
        "3273021003",
        "TERBIT",
        None,
        dt.datetime(2025, 7, 1, 9),
        dt.datetime(2025, 7, 1, 9),
    )
    insert = (
        "INSERT INTO tb_izin (no_izin, nib, nama_usaha, nama_pj, alamat, kd_kelurahan, "
        "status, no_sk_cabut, tgl_terbit, tgl_update) VALUES "
        "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    )
    async with running(env, source) as cap:
        await db.execute(insert, many=[row, (*row[:6], "DRAFT", *row[7:])])
        # Two updates: only the one that turns the status to DICABUT is a revocation.
        await db.execute("UPDATE tb_izin SET alamat = 'Jl. Setiabudi 203' WHERE id_izin = 1")
        await db.execute(
            "UPDATE tb_izin SET status = 'DICABUT', no_sk_cabut = 'SK-9', "
            "tgl_update = '2025-08-14 16:30:00' WHERE id_izin = 1"
        )
        await db.execute("DELETE FROM tb_izin WHERE id_izin = 2")
        terbit = await env.wait_for(IZIN_TERBIT, 1, check=cap.check)
        dicabut = await env.wait_for(IZIN_DICABUT, 2, check=cap.check)
        stats = cap.runner.stats
    assert len(terbit) == 1 and terbit[0].key == b"503/0412-PB/DPMPTSP/2025"
    reasons = sorted(
        decode(r.value, IZIN_DICABUT.parsed_schema)["alasan_pencabutan"] for r in dicabut
    )
    assert reasons == ["PELANGGARAN", "USAHA_BERHENTI"]
    assert stats.ignored == 2  # the DRAFT insert and the address change


async def test_a_server_without_row_based_binlog_is_refused_with_the_settings_to_change(
    maria_db: SourceDb, capture_env: CaptureEnv
) -> None:
    db, env = maria_db, capture_env
    await db.execute(SETORAN_MARIADB)
    assert db.server is not None
    db.server.execute("SET GLOBAL binlog_format = 'STATEMENT'")
    try:
        config = load_source(_source(env, db))
        runner = CaptureRunner(config, env.settings, connection=env.conn, registry=env.registry_url)
        with pytest.raises(SourceMisconfigured) as caught:
            await asyncio.wait_for(runner.run(asyncio.Event()), 120)
    finally:
        db.server.execute("SET GLOBAL binlog_format = 'ROW'")
    assert "SET GLOBAL binlog_format = 'ROW'" in caught.value.message


async def test_a_login_without_replication_grants_is_refused_with_the_grants(
    maria_db: SourceDb, capture_env: CaptureEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, env = maria_db, capture_env
    await db.execute(SETORAN_MARIADB)
    assert db.server is not None
    user = f"ro_{db.name[-8:]}"
    db.server.execute(
        f"CREATE USER '{user}'@'%' IDENTIFIED BY 'rahasia'; "
        f"GRANT SELECT ON {db.name}.* TO '{user}'@'%'"
    )
    monkeypatch.setenv("CAPTURE_TEST_PASSWORD", "rahasia")
    try:
        config = load_source(_source(env, db, database=database_block(db, user=user)))
        runner = CaptureRunner(config, env.settings, connection=env.conn, registry=env.registry_url)
        with pytest.raises(SourceMisconfigured) as caught:
            await asyncio.wait_for(runner.run(asyncio.Event()), 120)
    finally:
        db.server.execute(f"DROP USER '{user}'@'%'")
    assert f"GRANT REPLICATION SLAVE ON *.* TO '{user}'@'%'" in caught.value.message
    assert "REPLICATION CLIENT" in caught.value.message


async def test_a_mapping_naming_an_unknown_column_is_refused_with_its_line(
    maria_db: SourceDb, capture_env: CaptureEnv
) -> None:
    db, env = maria_db, capture_env
    await db.execute(SETORAN_MARIADB)
    await db.execute("ALTER TABLE ta_setoran DROP COLUMN nm_bank")  # the mapping reads it
    config = load_source(_source(env, db))
    runner = CaptureRunner(config, env.settings, connection=env.conn, registry=env.registry_url)
    with pytest.raises(MappingInvalid) as caught:
        await asyncio.wait_for(runner.run(asyncio.Event()), 120)
    assert caught.value.line == 28
    assert "has no column 'nm_bank'" in caught.value.message


async def test_a_purged_binlog_position_says_how_to_resnapshot(
    maria_db: SourceDb, capture_env: CaptureEnv
) -> None:
    db, env = maria_db, capture_env
    await db.execute(SETORAN_MARIADB)
    await insert_setoran(db, [setoran_row(i) for i in range(20)])
    source = _source(env, db)
    async with running(env, source) as cap:
        await env.wait_for(PAJAK, 20, check=cap.check)
    assert db.server is not None
    # The server moves on and purges the file the capture stood in while it was stopped.
    await insert_setoran(db, [setoran_row(i) for i in range(20, 30)])
    stored = _stored_binlog(env, "simda")
    db.server.execute("FLUSH BINARY LOGS")
    current = (await db.fetch("SHOW MASTER STATUS"))[0]["File"]
    for _ in range(100):  # a file a replica still reads is kept: wait for the dump to end
        db.server.execute(f"PURGE BINARY LOGS TO '{current}'")
        files = [r["Log_name"] for r in await db.fetch("SHOW BINARY LOGS")]
        if stored not in files:
            break
        await asyncio.sleep(0.2)
    assert stored not in files
    config = load_source(source)
    runner = CaptureRunner(config, env.settings, connection=env.conn, registry=env.registry_url)
    with pytest.raises(PositionLost) as caught:
        await asyncio.wait_for(runner.run(asyncio.Event()), 120)
    assert f"lintas capture reset {source} --snapshot" in (caught.value.hint or "")

    # What the hint says works: the rows are snapshotted again, the unchanged ones with the
    # same ids as before (downstream dedup drops them), the ten new ones with new ids.
    state = CaptureState.open(env.settings.capture.state_dir or Path(), config.name)
    state.reset()
    state.close()
    async with running(env, source) as cap:
        reads = await env.wait_for(PAJAK, 30, check=cap.check)
    assert len({r.event_id for r in reads}) == 30
    assert len(reads) == 50


async def test_a_server_restart_and_a_dropped_connection_lose_nothing(
    maria_db: SourceDb, capture_env: CaptureEnv, scale: float
) -> None:
    db, env = maria_db, capture_env
    server = db.server
    assert server is not None
    await db.execute(SETORAN_MARIADB)
    per_stage = max(50, int(300 * scale))
    async with running(env, _source(env, db, snapshot=False)) as cap:
        await insert_setoran(db, [setoran_row(i) for i in range(per_stage)])
        await env.wait_for(PAJAK, per_stage, check=cap.check)
        # A dropped connection: the server kills the capture's binlog dump.
        dumps = await db.fetch(
            "SELECT id FROM information_schema.processlist WHERE command = 'Binlog Dump'"
        )
        assert dumps, "the capture reads the binlog as a replica"
        for row in dumps:
            server.execute(f"KILL CONNECTION {row['id']}")
        await insert_setoran(db, [setoran_row(i) for i in range(per_stage, 2 * per_stage)])
        await env.wait_for(PAJAK, 2 * per_stage, check=cap.check)
        # The server restarts (our pool reconnects), with changes before and after.
        await asyncio.to_thread(server.restart)
        await insert_setoran(db, [setoran_row(i) for i in range(2 * per_stage, 3 * per_stage)])
        reads = await env.wait_for(PAJAK, 3 * per_stage, check=cap.check)
    assert len({r.event_id for r in reads}) == 3 * per_stage


async def test_changes_during_the_snapshot_are_neither_lost_nor_doubled(
    maria_db: SourceDb, capture_env: CaptureEnv
) -> None:
    db, env = maria_db, capture_env
    await db.execute(SETORAN_MARIADB)
    rows = 1200
    await insert_setoran(db, [setoran_row(i) for i in range(rows)])
    async with running(env, _source(env, db)) as cap:
        # Corrections while the snapshot reads its chunks: each lands either in a chunk read
        # after it or in the stream, never both and never neither.
        for round_ in range(1, 6):
            await update_setoran(db, list(range(round_, rows + 1, 7)), 1000 * round_)
            await asyncio.sleep(0.05)
        final = {
            r["id_setoran"]: r["denda"]
            for r in await db.fetch("SELECT id_setoran, denda FROM ta_setoran")
        }
        (status,) = await db.fetch("SHOW MASTER STATUS")
        await env.wait_for(PAJAK, rows, check=cap.check)
        target = BinlogPosition.of(status["File"], status["Position"])
        for _ in range(600):  # until the committed position passes the last correction
            cap.check()
            done = cap.runner.stats.position
            if done and BinlogPosition.parse(done) >= target:
                break
            await asyncio.sleep(0.2)
        reads = await env.read(PAJAK)
    ids = Counter(r.event_id for r in reads)
    assert max(ids.values()) == 1
    last: dict[str, decimal.Decimal] = {}
    for read in sorted(reads, key=lambda r: (r.partition, r.offset)):
        event = decode(read.value, PAJAK.parsed_schema)
        last[event["ntpd"]] = event["denda"]
    assert last == {setoran_row(i - 1)[0]: denda for i, denda in final.items()}

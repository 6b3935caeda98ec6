"""Table polling against real PostgreSQL and MariaDB: by updated_at with an overlap (no
duplicates within a run, the same ids after a restart), and by an increasing key."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from capture_helpers import (
    PAJAK,
    SETORAN_MARIADB,
    SETORAN_POSTGRES,
    CaptureEnv,
    SourceDb,
    capture_env,
    database_block,
    insert_setoran,
    maria_db,
    mariadb,
    pg_db,
    running,
    setoran_row,
    update_setoran,
)

__all__ = ["capture_env", "maria_db", "mariadb", "pg_db"]  # fixtures used here


def _source(env: CaptureEnv, db: SourceDb, poll: dict[str, object]) -> Path:
    return env.source_file(
        "simda-poll",
        {
            "opd": "bapenda",
            "app": "simda",
            "database": database_block(db),
            "mechanism": "polling",
            "tables": [{"mapping": "ta_setoran.mapping.yaml", "poll": poll}],
        },
    )


async def test_polling_by_updated_at_sends_each_version_once_and_resumes_with_the_same_ids(
    pg_db: SourceDb, capture_env: CaptureEnv
) -> None:
    db, env = pg_db, capture_env
    await db.execute(SETORAN_POSTGRES)
    source = _source(env, db, {"column": "tgl_update", "mode": "timestamp", "overlap_s": 60})
    async with running(env, source) as cap:
        await insert_setoran(db, [setoran_row(i) for i in range(300)])
        await insert_setoran(db, [setoran_row(300, kd_pajak="99")])
        await env.wait_for(PAJAK, 300, check=cap.check)
        await update_setoran(db, list(range(1, 101)), 7500)
        reads = await env.wait_for(PAJAK, 400, check=cap.check)
        stats = cap.runner.stats
    # Every pass re-reads the last minute (the overlap); rows already sent are not re-sent.
    assert max(Counter(r.event_id for r in reads).values()) == 1
    assert len(reads) == 400 and stats.dead == 1
    (letter,) = await env.read_dlq()
    assert letter.key == b"301"

    # A new process forgets what it sent in the overlap: it re-sends those rows with the same
    # ids (dropped downstream), and new changes with new ones.
    async with running(env, source) as cap:
        await update_setoran(db, list(range(101, 151)), 9000)
        reads = await env.wait_for(PAJAK, 450, check=cap.check)
    assert len({r.event_id for r in reads}) == 450


async def test_polling_by_an_increasing_key_reads_inserts(
    maria_db: SourceDb, capture_env: CaptureEnv
) -> None:
    db, env = maria_db, capture_env
    await db.execute(SETORAN_MARIADB)
    await insert_setoran(db, [setoran_row(i) for i in range(120)])
    source = _source(env, db, {"column": "id_setoran", "mode": "key"})
    async with running(env, source) as cap:
        await env.wait_for(PAJAK, 120, check=cap.check)
        await insert_setoran(db, [setoran_row(i) for i in range(120, 250)])
        reads = await env.wait_for(PAJAK, 250, check=cap.check)
        position = cap.runner.stats.position
    assert len(reads) == 250
    assert position == "ta_setoran:250"

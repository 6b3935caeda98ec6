"""The capture process killed with SIGKILL while the legacy application writes, then started
again: every change reaches Kafka, each event id once after dedup. Counted by event id."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from capture_helpers import (
    PAJAK,
    SETORAN_MARIADB,
    SETORAN_POSTGRES,
    WAIT_S,
    CaptureEnv,
    SourceDb,
    capture_env,
    database_block,
    insert_setoran,
    maria_db,
    mariadb,
    pg_db,
    setoran_row,
)
from producer_helpers import duplicates_are_identical

from lintas.producers.capture.status import read_positions

__all__ = ["capture_env", "maria_db", "mariadb", "pg_db"]  # fixtures used here

TXN = 20  # changes per transaction of the writing application


class CaptureProcess:
    """``lintas capture run`` as a process of its own, on the test's topics and state."""

    def __init__(self, env: CaptureEnv, source: Path) -> None:
        self.env = env
        self.log = env.work / "capture.log"
        capture = env.settings.capture
        self.environ = {
            **os.environ,
            "LINTAS_DATA_DIR": str(env.work),
            "LINTAS_PRODUCER__SPOOL_DIR": str(env.work / "spool"),
            "LINTAS_CAPTURE__STATE_DIR": str(capture.state_dir),
            "LINTAS_CAPTURE__TOPIC_PREFIX": env.prefix,
            "LINTAS_CAPTURE__POLL_INTERVAL_S": "0.2",
            "LINTAS_CAPTURE__HEARTBEAT_S": "1",
            "LINTAS_CAPTURE__RETRY_MAX_S": "2",
            "LINTAS_REGISTRY_URL": env.registry_url,
        }
        self.argv = [sys.executable, "-m", "lintas.cli", "capture", "run", str(source)]
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.argv, env=self.environ, stdout=log, stderr=log)

    def check(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"the capture exited:\n{self.log.read_text()[-3000:]}")

    async def kill_once_it_committed(self, source: str) -> None:
        """SIGKILL, but only after it committed a position (so it dies mid-stream)."""
        state_dir = self.env.settings.capture.state_dir
        assert state_dir is not None and self.proc is not None
        before = read_positions(state_dir, source)
        for _ in range(WAIT_S * 10):
            self.check()
            now = read_positions(state_dir, source)
            if now and now != before:
                break
            await asyncio.sleep(0.1)
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self.kills += 1

    async def started(self, source: str) -> None:
        state_dir = self.env.settings.capture.state_dir
        assert state_dir is not None
        for _ in range(WAIT_S * 10):
            self.check()
            if read_positions(state_dir, source):
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the capture did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


async def _write(db: SourceDb, total: int, milestones: dict[int, asyncio.Event]) -> None:
    """The application: inserts, and every third transaction corrections of earlier rows.
    Each milestone's event is set once that many changes are committed."""
    done = inserted = 0
    while done < total:
        size = min(TXN, total - done)
        if inserted >= TXN and (done // TXN) % 3 == 2:
            ids = [1 + (done + k) % inserted for k in range(size)]
            await _correct(db, ids, base=done)
        else:
            await insert_setoran(db, [setoran_row(inserted + k) for k in range(size)])
            inserted += size
        done += size
        for at, reached in milestones.items():
            if done >= at:
                reached.set()
        await asyncio.sleep(0)


async def _correct(db: SourceDb, ids: list[int], *, base: int) -> None:
    """One transaction of updates, each to a value never used before (a real change)."""
    if db.kind == "mariadb":
        sql = "UPDATE ta_setoran SET denda = %s, jml_bayar = pokok + %s WHERE id_setoran = %s"
    else:
        sql = "UPDATE ta_setoran SET denda = $1, jml_bayar = pokok + $2 WHERE id_setoran = $3"
    await db.execute(sql, many=[(base + k + 1, base + k + 1, i) for k, i in enumerate(ids)])


async def _sigkill_during_writes(db: SourceDb, env: CaptureEnv, source: Path, scale: float) -> None:
    total = max(600, int(20_000 * scale) // TXN * TXN)
    process = CaptureProcess(env, source)
    process.start()
    # Every change must be a change event, so no snapshot: the capture first records where
    # the stream starts (binlog position, or the slot), then the application writes.
    await process.started(source.stem)
    milestones = {total // 3: asyncio.Event(), 2 * total // 3: asyncio.Event()}
    writer = asyncio.create_task(_write(db, total, milestones))
    try:
        for reached in milestones.values():
            await asyncio.wait_for(reached.wait(), WAIT_S)
            await process.kill_once_it_committed(source.stem)
            process.start()
        await writer
        reads = await env.wait_for(PAJAK, total, check=process.check)
    finally:
        writer.cancel()
        process.stop()
    assert process.kills == 2
    ids = {r.event_id for r in reads}
    assert len(ids) == total  # every change, each once after dedup by id
    duplicates_are_identical(reads)  # a copy re-sent after a kill is the same event
    per_key: dict[bytes, int] = defaultdict(int)
    for read in reads:
        per_key[read.key] += 1
    assert per_key, "events are keyed by the taxpayer"


async def test_sigkill_during_binlog_capture_loses_nothing(
    maria_db: SourceDb, capture_env: CaptureEnv, scale: float
) -> None:
    await maria_db.execute(SETORAN_MARIADB)
    source = capture_env.source_file(
        "faults-binlog",
        {
            "opd": "bapenda",
            "app": "simda",
            "database": database_block(maria_db),
            "mechanism": "binlog",
            "snapshot": False,
            "tables": [{"mapping": "ta_setoran.mapping.yaml"}],
        },
    )
    await _sigkill_during_writes(maria_db, capture_env, source, scale)


async def test_sigkill_during_logical_decoding_loses_nothing(
    pg_db: SourceDb, capture_env: CaptureEnv, scale: float
) -> None:
    await pg_db.execute(SETORAN_POSTGRES)
    name = "lintas_" + pg_db.name.removeprefix("lintas_test_")
    await pg_db.execute(f"CREATE PUBLICATION {name} FOR TABLE ta_setoran")
    source = capture_env.source_file(
        "faults-logical",
        {
            "opd": "bapenda",
            "app": "simda",
            "database": database_block(pg_db),
            "mechanism": "logical",
            "snapshot": False,
            "logical": {"slot": name, "publication": name},
            "tables": [{"mapping": "ta_setoran.mapping.yaml"}],
        },
    )
    await _sigkill_during_writes(pg_db, capture_env, source, scale)

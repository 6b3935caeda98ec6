"""``lintas capture`` as an operator runs it: check, status, reset, outbox-ddl."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from capture_helpers import (
    SETORAN_MARIADB,
    CaptureEnv,
    SourceDb,
    capture_env,
    database_block,
    maria_db,
    mariadb,
)

__all__ = ["capture_env", "maria_db", "mariadb"]  # fixtures used here


def _cli(env: CaptureEnv, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "LINTAS_DATA_DIR": str(env.work),
        "LINTAS_CAPTURE__STATE_DIR": str(env.settings.capture.state_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "lintas.cli", "capture", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _source(env: CaptureEnv, db: SourceDb) -> Path:
    return env.source_file(
        "simda-cli",
        {
            "opd": "bapenda",
            "app": "simda",
            "database": database_block(db),
            "mechanism": "binlog",
            "tables": [{"mapping": "ta_setoran.mapping.yaml"}],
        },
    )


async def test_check_status_and_reset(maria_db: SourceDb, capture_env: CaptureEnv) -> None:
    env = capture_env
    await maria_db.execute(SETORAN_MARIADB)
    source = _source(env, maria_db)
    checked = _cli(env, "check", str(source))
    assert checked.returncode == 0, checked.stderr
    assert "ok simda-cli (binlog)" in checked.stdout
    assert "binlog settings and replication grants are in place" in checked.stdout

    status = _cli(env, "status", "--json", str(source))
    assert status.returncode == 0, status.stderr
    (doc,) = json.loads(status.stdout)
    assert doc["source"] == "simda-cli" and doc["positions"] == {}

    refused = _cli(env, "reset", str(source))
    assert refused.returncode == 2 and "--snapshot" in refused.stderr
    assert _cli(env, "reset", str(source), "--snapshot").returncode == 0


async def test_check_names_the_line_of_an_unknown_column(
    maria_db: SourceDb, capture_env: CaptureEnv
) -> None:
    env = capture_env
    await maria_db.execute(SETORAN_MARIADB)
    await maria_db.execute("ALTER TABLE ta_setoran DROP COLUMN kd_billing")
    result = _cli(env, "check", str(_source(env, maria_db)))
    assert result.returncode == 1
    assert "ta_setoran.mapping.yaml:10: table ta_setoran has no column 'kd_billing'" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_outbox_ddl_prints_the_table(capture_env: CaptureEnv) -> None:
    result = _cli(capture_env, "outbox-ddl", "--dialect", "mariadb", "--table", "app_outbox")
    assert result.returncode == 0
    assert result.stdout.startswith("CREATE TABLE app_outbox (")

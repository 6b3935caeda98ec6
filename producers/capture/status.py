"""Where a capture source stands, read from its state file and its database.

What ``lintas capture status`` prints, and what the portal's dashboard can call: the
committed positions, and for logical decoding the slot's lag (:func:`.pglogical.slot_lag`).
Reading the state file does not need the capture's lock (SQLite readers never block the
writer), so it works while the capture runs.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .config import SourceConfig
from .db import Postgres
from .exceptions import SourceUnavailable
from .pglogical import slot_lag
from .state import decode_value
from .types import Mechanism

__all__ = ["read_positions", "source_status"]


def read_positions(directory: Path, source: str) -> dict[str, dict[str, Any]]:
    """The committed positions of ``source``: name -> ``{"value", "updated_at"}``."""
    path = directory / f"{source}.db"
    if not path.exists():
        return {}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT name, value, updated_at FROM positions").fetchall()
    except sqlite3.OperationalError:  # created but never written
        return {}
    finally:
        conn.close()
    return {name: {"value": decode_value(value), "updated_at": at} for name, value, at in rows}


async def source_status(config: SourceConfig, directory: Path) -> dict[str, Any]:
    """The status of one source: mechanism, positions, and the slot's lag when it has one.

    A database that cannot be reached is reported in ``error``, not raised.
    """
    doc: dict[str, Any] = {
        "source": config.name,
        "mechanism": config.mechanism.value,
        "database": config.database.display,
        "tables": list(config.tables),
        "positions": read_positions(directory, config.name),
    }
    if config.mechanism is Mechanism.LOGICAL:
        db = Postgres(
            config.database,
            source=config.name,
            application_name=f"lintas-capture-status-{config.name}"[:63],
        )
        try:
            await db.connect()
            lag = await slot_lag(db.connection, config.slot)
            doc["slot"] = asdict(lag) if lag else {"slot": config.slot, "missing": True}
        except SourceUnavailable as exc:
            doc["error"] = exc.message
        finally:
            await db.close()
    return doc

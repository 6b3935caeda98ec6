"""Durable positions of a capture source: where to resume after a restart or a crash.

One SQLite database per source, ``<state_dir>/<source>.db`` (owner-only, WAL mode,
``synchronous=FULL``: a committed position is on disk before the capture reads further).
A position is committed only after Kafka acknowledged (or the spool holds) every event up
to it, so a crash re-reads at most what was not yet confirmed, and the stable event ids
make the copies recognisable downstream.

What is kept, by name::

    binlog                  {"file": "mariadb-bin.000003", "pos": 1234}: next transaction
    poll.<table>            {"value": <high-water mark>, "key": [...]}
    snapshot.<table>        {"done": false, "after": [<last key sent>]}
    logical                 {"lsn": "0/16B3748"} (the slot holds the real position)

and the snapshot's chunk marks (:class:`ChunkMark`): for each chunk of the initial
snapshot, the upper key and the point in the change stream it is consistent with.

A second process capturing the same source is refused (:class:`StateLocked`): an ``flock``
on ``<source>.lock`` that the kernel releases even on SIGKILL.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import decimal
import fcntl
import os
import sqlite3
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .exceptions import StateLocked

__all__ = ["CaptureState", "ChunkMark", "decode_value", "encode_value"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS positions (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    tbl TEXT NOT NULL,
    seq INTEGER NOT NULL,
    upper TEXT,
    mark TEXT NOT NULL,
    PRIMARY KEY (tbl, seq)
);
"""


def _tag(value: Any) -> Any:
    # Keys and high-water marks hold database values: keep their types across a restart.
    if isinstance(value, dt.datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$d": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"$dec": str(value)}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, uuid.UUID):
        return {"$u": str(value)}
    if isinstance(value, dt.timedelta):
        return {"$td": value.total_seconds()}
    if isinstance(value, tuple | list):
        return [_tag(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _tag(v) for k, v in value.items()}
    return value


def _untag(value: Any) -> Any:
    if isinstance(value, list):
        return [_untag(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            ((tag, raw),) = value.items()
            if tag == "$dt":
                return dt.datetime.fromisoformat(raw)
            if tag == "$d":
                return dt.date.fromisoformat(raw)
            if tag == "$dec":
                return decimal.Decimal(raw)
            if tag == "$b":
                return base64.b64decode(raw)
            if tag == "$u":
                return uuid.UUID(raw)
            if tag == "$td":
                return dt.timedelta(seconds=raw)
        return {k: _untag(v) for k, v in value.items()}
    return value


def encode_value(value: Any) -> str:
    """JSON text of a position, with dates, decimals and bytes tagged."""
    return orjson.dumps(_tag(value)).decode()


def decode_value(text: str) -> Any:
    """The value :func:`encode_value` encoded (key tuples come back as lists)."""
    return _untag(orjson.loads(text))


@dataclass(frozen=True, slots=True)
class ChunkMark:
    """One chunk of an initial snapshot.

    Attributes:
        table: the table.
        seq: its number, from 0.
        upper: the key of its last row; ``None`` for the last chunk (open above).
        mark: what the chunk is consistent with: ``{"file", "pos"}`` (binlog) or the
            PostgreSQL snapshot ``{"xmin", "xmax", "xip"}``.
    """

    table: str
    seq: int
    upper: tuple[Any, ...] | None
    mark: Mapping[str, Any]


class CaptureState:
    """The positions of one source; open with :meth:`open`, one process at a time."""

    def __init__(self, path: Path, conn: sqlite3.Connection, lock_fd: int) -> None:
        self.path = path
        self._conn = conn
        self._lock_fd = lock_fd
        self._cache: dict[str, Any] = {
            name: decode_value(value)
            for name, value in conn.execute("SELECT name, value FROM positions")
        }

    @classmethod
    def open(cls, directory: Path, source: str) -> CaptureState:
        """Open (creating) ``<directory>/<source>.db`` and lock it for this process.

        Raises:
            StateLocked: another process holds it.
        """
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = directory / f"{source}.db"
        lock_path = directory / f"{source}.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise StateLocked(source, lock_path, {"pid": holder} if holder else None) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            path.chmod(0o600)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, conn, fd)

    def close(self) -> None:
        """Close the database and release the lock. Idempotent."""
        if self._lock_fd >= 0:
            self._conn.close()
            os.close(self._lock_fd)
            self._lock_fd = -1

    def get(self, name: str) -> Any:
        """The value last committed under ``name``, or ``None``."""
        return self._cache.get(name)

    def names(self) -> list[str]:
        return sorted(self._cache)

    def chunks(self, table: str) -> list[ChunkMark]:
        """The snapshot chunks of ``table``, in order."""
        rows = self._conn.execute(
            "SELECT seq, upper, mark FROM chunks WHERE tbl = ? ORDER BY seq", (table,)
        ).fetchall()
        return [
            ChunkMark(
                table,
                seq,
                None if upper is None else tuple(decode_value(upper)),
                decode_value(mark),
            )
            for seq, upper, mark in rows
        ]

    async def commit(
        self,
        values: Mapping[str, Any],
        *,
        chunk: ChunkMark | None = None,
        drop: Iterable[str] = (),
    ) -> None:
        """Store ``values`` (and a snapshot chunk) in one transaction, on disk when it returns.

        Call only once Kafka acknowledged (or the spool holds) everything up to them.
        """
        await asyncio.to_thread(self._commit, dict(values), chunk, tuple(drop))

    def _commit(self, values: dict[str, Any], chunk: ChunkMark | None, drop: Sequence[str]) -> None:
        now = dt.datetime.now(dt.UTC).isoformat()
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for name, value in values.items():
                conn.execute(
                    "INSERT INTO positions (name, value, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value, "
                    "updated_at = excluded.updated_at",
                    (name, encode_value(value), now),
                )
            for name in drop:
                conn.execute("DELETE FROM positions WHERE name = ?", (name,))
            if chunk is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO chunks (tbl, seq, upper, mark) VALUES (?, ?, ?, ?)",
                    (
                        chunk.table,
                        chunk.seq,
                        None if chunk.upper is None else encode_value(list(chunk.upper)),
                        encode_value(dict(chunk.mark)),
                    ),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._cache.update(values)
        for name in drop:
            self._cache.pop(name, None)

    def updated_at(self) -> dict[str, str]:
        """When each position was last committed (UTC, ISO 8601)."""
        return dict(self._conn.execute("SELECT name, updated_at FROM positions").fetchall())

    def reset(self) -> None:
        """Forget every position and chunk: the next start snapshots again."""
        self._conn.execute("BEGIN IMMEDIATE")
        self._conn.execute("DELETE FROM positions")
        self._conn.execute("DELETE FROM chunks")
        self._conn.execute("COMMIT")
        self._cache.clear()

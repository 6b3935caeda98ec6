"""The store-and-forward spool: encoded records on disk until the broker has them.

One spool is one SQLite database in WAL mode, ``<spool_dir>/<name>/slot-<n>.db``:

- ``records`` is an append-only queue; ``seq`` (AUTOINCREMENT, never reused) is the order
  records were handed over, and records are forwarded in that order.
- Every append is one transaction with ``synchronous=FULL``: the WAL is fsync'd before
  ``append`` returns, so a spooled event survives a crash of the app or the machine.
- Forwarded records are deleted with ``secure_delete`` on (their bytes are zeroed), and when
  the queue is empty the WAL is checkpointed and truncated: personal data does not linger
  on disk once Kafka has it.
- ``rejected`` keeps records the broker refused for good (not authorized, too large), with
  the reason: they are not retried in a loop, and not lost either (``lintas spool``).
- ``schema_ids`` remembers the registry ids the producer learnt, so a producer restarted
  while the network is down can still encode and spool.

A spool is used by one process at a time: ``slot-<n>.lock`` is held with ``flock`` while it
is open (the kernel drops it when the process dies, even by SIGKILL). A producer takes the
first free slot of its name, so several worker processes of one app (gunicorn, uWSGI) each
get their own spool, and a restarted worker picks up a slot left by a dead one.

SQLite is blocking: every call runs in one thread per spool, off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ._record import Record, decode_headers, encode_headers
from .exceptions import SpoolFull, SpoolLocked

__all__ = ["MAX_SLOTS", "Spool", "SpooledRecord", "connect", "holder", "slot_paths"]

MAX_SLOTS = 64
"""Slots per spool name: more worker processes than this share nothing sensible anyway."""

_SCHEMA_VERSION = 1
_DDL = """
CREATE TABLE IF NOT EXISTS records (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    topic      TEXT    NOT NULL,
    key        BLOB    NOT NULL,
    value      BLOB    NOT NULL,
    headers    BLOB    NOT NULL,
    event_id   TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    spooled_at REAL    NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected (
    seq         INTEGER PRIMARY KEY,
    topic       TEXT    NOT NULL,
    key         BLOB    NOT NULL,
    value       BLOB    NOT NULL,
    headers     BLOB    NOT NULL,
    event_id    TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    spooled_at  REAL    NOT NULL,
    rejected_at REAL    NOT NULL,
    reason      TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS schema_ids (
    registry    TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    schema_id   INTEGER NOT NULL,
    PRIMARY KEY (registry, subject, fingerprint)
);
"""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SpooledRecord:
    """A record as read back from the spool, with its position and accounted size."""

    seq: int
    size: int
    record: Record


def slot_paths(root: Path, name: str, slot: int) -> tuple[Path, Path]:
    folder = root / name
    return folder / f"slot-{slot}.db", folder / f"slot-{slot}.lock"


def _lock(lock_path: Path) -> int | None:
    """Take the slot's lock; the fd, or ``None`` when another process holds it."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def holder(lock_path: Path) -> int | None:
    """The pid written into a lock file (the process holding it, if it still does)."""
    try:
        text = lock_path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    if read_only:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    else:
        if not path.exists():
            # Created owner-only before SQLite opens it; SQLite gives the -wal and -shm
            # files the database's permissions. The spool holds personal data.
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        conn = sqlite3.connect(path, timeout=5, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")  # effective on a new, empty file only
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA secure_delete=ON")
    return conn


class _SpoolFile:
    """The synchronous part: every method runs on the spool's own thread."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.conn = connect(path)
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > _SCHEMA_VERSION:
            self.conn.close()
            raise RuntimeError(
                f"spool {path} was written by a newer Lintas (format {version}); upgrade"
            )
        self.conn.executescript(_DDL)
        self.conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
        count, used = self.conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM records"
        ).fetchone()
        rejected, rejected_bytes = self.conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM rejected"
        ).fetchone()
        self.records = int(count)
        self.bytes = int(used)
        self.rejected = int(rejected)
        self.rejected_bytes = int(rejected_bytes)

    def append(self, records: Sequence[Record]) -> None:
        sizes = [r.size for r in records]
        needed = sum(sizes)
        used = self.bytes + self.rejected_bytes
        if used + needed > self.max_bytes:
            raise SpoolFull(
                str(self.path),
                used_bytes=used,
                limit_bytes=self.max_bytes,
                records=self.records + self.rejected,
                needed_bytes=needed,
            )
        now = time.time()
        rows = [
            (r.topic, r.key, r.value, encode_headers(r.headers), r.event_id, size, now)
            for r, size in zip(records, sizes, strict=True)
        ]
        with self._transaction():
            self.conn.executemany(
                "INSERT INTO records (topic, key, value, headers, event_id, size, spooled_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        self.records += len(records)
        self.bytes += needed

    def peek(self, limit: int) -> list[SpooledRecord]:
        rows = self.conn.execute(
            "SELECT seq, topic, key, value, headers, event_id, size FROM records "
            "ORDER BY seq LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            SpooledRecord(
                seq, size, Record(topic, bytes(key), bytes(value), decode_headers(headers), eid)
            )
            for seq, topic, key, value, headers, eid, size in rows
        ]

    def delete(self, entries: Sequence[SpooledRecord]) -> None:
        with self._transaction():
            self.conn.executemany("DELETE FROM records WHERE seq = ?", [(e.seq,) for e in entries])
        self.records -= len(entries)
        self.bytes -= sum(e.size for e in entries)
        if self.records == 0:
            self._scrub()

    def reject(self, entries: Sequence[SpooledRecord], reason: str) -> None:
        now = time.time()
        with self._transaction():
            for entry in entries:
                self.conn.execute(
                    "INSERT INTO rejected (seq, topic, key, value, headers, event_id, size, "
                    "spooled_at, rejected_at, reason) SELECT seq, topic, key, value, headers, "
                    "event_id, size, spooled_at, ?, ? FROM records WHERE seq = ?",
                    (now, reason, entry.seq),
                )
                self.conn.execute("DELETE FROM records WHERE seq = ?", (entry.seq,))
        moved = sum(e.size for e in entries)
        self.records -= len(entries)
        self.bytes -= moved
        self.rejected += len(entries)
        self.rejected_bytes += moved

    def requeue_rejected(self) -> int:
        """Put rejected records back at the end of the queue (after the ACLs were fixed)."""
        with self._transaction():
            cursor = self.conn.execute(
                "INSERT INTO records (topic, key, value, headers, event_id, size, spooled_at) "
                "SELECT topic, key, value, headers, event_id, size, spooled_at FROM rejected "
                "ORDER BY seq"
            )
            moved = cursor.rowcount
            self.conn.execute("DELETE FROM rejected")
        self.records += moved
        self.bytes += self.rejected_bytes
        self.rejected = 0
        self.rejected_bytes = 0
        return moved

    def drop_rejected(self) -> int:
        with self._transaction():
            dropped = self.conn.execute("DELETE FROM rejected").rowcount
        self.rejected = 0
        self.rejected_bytes = 0
        if self.records == 0:
            self._scrub()
        return dropped

    def schema_ids(self, registry: str) -> dict[tuple[str, str], int]:
        rows = self.conn.execute(
            "SELECT subject, fingerprint, schema_id FROM schema_ids WHERE registry = ?",
            (registry,),
        ).fetchall()
        return {(subject, fp): int(sid) for subject, fp, sid in rows}

    def remember_schema_id(
        self, registry: str, subject: str, fingerprint: str, schema_id: int
    ) -> None:
        with self._transaction():
            self.conn.execute(
                "INSERT OR REPLACE INTO schema_ids VALUES (?, ?, ?, ?)",
                (registry, subject, fingerprint, schema_id),
            )

    def close(self) -> None:
        if self.records == 0 and self.rejected == 0:
            self._scrub()
        self.conn.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        # BEGIN IMMEDIATE: the write lock is taken up front, so a concurrent reader
        # (`lintas spool status`) never turns a commit into a busy error half-way.
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _scrub(self) -> None:
        # Queue empty: give freed pages back and empty the WAL, whose old frames still hold
        # the forwarded records' bytes. TRUNCATE leaves a zero-length -wal file.
        self.conn.execute("PRAGMA incremental_vacuum")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


class Spool:
    """One open spool slot, its SQLite calls on a thread of its own.

    Usage::

        spool = await Spool.open(root, "dukcapil.siak", max_bytes=1 << 30)
        await spool.append(records)               # fsync'd when this returns
        batch = await spool.peek(1000)            # oldest first
        await spool.delete(batch)                 # after Kafka acknowledged them
        await spool.close()
    """

    def __init__(
        self, file: _SpoolFile, *, name: str, slot: int, lock_fd: int, executor: ThreadPoolExecutor
    ) -> None:
        self._file = file
        self._executor = executor
        self._lock_fd: int | None = lock_fd
        self.name = name
        self.slot = slot
        self.path = file.path

    @classmethod
    async def open(cls, root: Path, name: str, *, max_bytes: int, slot: int | None = None) -> Spool:
        """Open (creating if needed) the first free slot of ``name``, or exactly ``slot``.

        Raises:
            SpoolLocked: ``slot`` was given and another process holds it, or all
                :data:`MAX_SLOTS` slots are taken.
        """
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"lintas-spool-{name}")
        loop = asyncio.get_running_loop()
        try:
            file, chosen, fd = await loop.run_in_executor(
                executor, _open_slot, root, name, max_bytes, slot
            )
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(file, name=name, slot=chosen, lock_fd=fd, executor=executor)

    # -- numbers (read on the loop; ints are replaced atomically by the spool thread) ------

    @property
    def records(self) -> int:
        """Records waiting to be forwarded."""
        return self._file.records

    @property
    def bytes(self) -> int:
        """Bytes those records take (accounted size)."""
        return self._file.bytes

    @property
    def rejected(self) -> int:
        """Records the broker refused for good, kept for an operator."""
        return self._file.rejected

    @property
    def max_bytes(self) -> int:
        return self._file.max_bytes

    @property
    def closed(self) -> bool:
        return self._lock_fd is None

    # -- operations --------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        if self._lock_fd is None:
            raise RuntimeError(f"spool {self.path} is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def append(self, records: Sequence[Record]) -> None:
        """Add records at the end, durably (fsync'd) before returning.

        Raises:
            SpoolFull: they do not fit in ``max_bytes``; nothing was added.
        """
        if records:
            await self._run(self._file.append, records)

    async def peek(self, limit: int) -> list[SpooledRecord]:
        """The oldest ``limit`` records, in order, without removing them."""
        return await self._run(self._file.peek, limit)

    async def delete(self, entries: Sequence[SpooledRecord]) -> None:
        """Remove forwarded records (their bytes are zeroed on disk)."""
        if entries:
            await self._run(self._file.delete, entries)

    async def reject(self, entries: Sequence[SpooledRecord], reason: str) -> None:
        """Move records the broker refused for good out of the queue, keeping the reason."""
        if entries:
            await self._run(self._file.reject, entries, reason)

    async def requeue_rejected(self) -> int:
        """Put every rejected record back at the end of the queue; how many."""
        return await self._run(self._file.requeue_rejected)

    async def drop_rejected(self) -> int:
        """Delete every rejected record (they are lost); how many."""
        return await self._run(self._file.drop_rejected)

    async def schema_ids(self, registry: str) -> dict[tuple[str, str], int]:
        """Schema ids remembered for a registry: (subject, fingerprint) -> id."""
        return await self._run(self._file.schema_ids, registry)

    async def remember_schema_id(
        self, registry: str, subject: str, fingerprint: str, schema_id: int
    ) -> None:
        await self._run(self._file.remember_schema_id, registry, subject, fingerprint, schema_id)

    async def close(self) -> None:
        """Close the database and release the slot (idempotent)."""
        if self._lock_fd is None:
            return
        try:
            await self._run(self._file.close)
        finally:
            os.close(self._lock_fd)
            self._lock_fd = None
            self._executor.shutdown(wait=False)

    def __del__(self) -> None:
        fd = getattr(self, "_lock_fd", None)
        if fd is not None:
            # The database is closed by the garbage collector; the lock must be released
            # here or this process keeps the slot for its lifetime.
            with contextlib.suppress(OSError):
                os.close(fd)


def _open_slot(
    root: Path, name: str, max_bytes: int, slot: int | None
) -> tuple[_SpoolFile, int, int]:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    candidates = [slot] if slot is not None else list(range(MAX_SLOTS))
    for candidate in candidates:
        db_path, lock_path = slot_paths(root, name, candidate)
        fd = _lock(lock_path)
        if fd is None:
            continue
        try:
            return _SpoolFile(db_path, max_bytes), candidate, fd
        except BaseException:
            os.close(fd)
            raise
    if slot is not None:
        db_path, lock_path = slot_paths(root, name, slot)
        raise SpoolLocked(str(db_path), holder(lock_path))
    raise SpoolLocked(str(folder / "slot-*.db"), None)

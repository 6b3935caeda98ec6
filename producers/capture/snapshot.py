"""Initial snapshot of the binlog and logical-decoding sources: the rows that already exist.

The snapshot reads each table in key order, in chunks, each chunk in a consistent read of
its own that tells where in the change stream it stands (MariaDB: the binlog position of a
``WITH CONSISTENT SNAPSHOT`` transaction; PostgreSQL: the transaction's xid snapshot). After
a chunk is acknowledged by Kafka, its progress and that mark are committed together, so a
crash resumes at the next chunk. Rows get ids from their key and content, so a chunk
re-read after a crash gives the same ids for rows that did not change.

The change stream starts from before the first chunk. For a change of a key inside a chunk
that was already read, the chunk's mark says whether the chunk saw it: if so, it is skipped
(the snapshot row already carries it); if not, it is sent. That makes snapshot + stream
exact without holding one long transaction (or an exported snapshot) open for the whole
table, which a crash would lose.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from .db import MariaDB, Postgres
from .publisher import Outcome
from .state import CaptureState, ChunkMark
from .types import Change, Op, row_digest

__all__ = ["SnapshotFilter", "Snapshotter", "snapshot_done"]

log = logging.getLogger("lintas.capture")


def snapshot_done(state: CaptureState, tables: Sequence[str]) -> bool:
    """Whether every table's snapshot finished."""
    return all((state.get(f"snapshot.{t}") or {}).get("done") for t in tables)


class Snapshotter:
    """Reads the tables chunk by chunk and publishes their rows as ``snapshot`` changes.

    Args:
        db: the source's connection (its ``consistent_chunk`` gives rows and mark).
        state: the source's positions.
        send: publishes a batch of changes (acknowledged or spooled when it returns).
        source: the source's name, for the log.
        keys: table -> key columns.
        chunk_rows: rows per chunk.
        on_first_mark: called with the first chunk's mark before its commit (the binlog
            source starts its stream there); returns extra positions to commit with it.
    """

    def __init__(
        self,
        db: MariaDB | Postgres,
        state: CaptureState,
        send: Callable[[Sequence[Change]], Awaitable[Outcome]],
        keys: Mapping[str, Sequence[str]],
        *,
        chunk_rows: int,
        source: str,
        on_first_mark: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
    ) -> None:
        self.db = db
        self.state = state
        self.send = send
        self.source = source
        self.keys = keys
        self.chunk_rows = chunk_rows
        self.on_first_mark = on_first_mark

    async def run(self, stop: asyncio.Event) -> bool:
        """Snapshot what is left; True when every table is done (False when stopped)."""
        for table, key in self.keys.items():
            progress = self.state.get(f"snapshot.{table}") or {"done": False, "after": None}
            if progress["done"]:
                continue
            seq = len(self.state.chunks(table))
            after = progress["after"]
            log.info("%s: snapshot of %s from key %s", self.source, table, after)
            while True:
                if stop.is_set():
                    return False
                rows, mark = await self.db.consistent_chunk(table, key, after, self.chunk_rows)
                changes = [
                    Change(
                        table=table,
                        op=Op.SNAPSHOT,
                        key=tuple(row[c] for c in key),
                        row=row,
                        position="snapshot:" + row_digest(row),
                    )
                    for row in rows
                ]
                await self.send(changes)
                last = len(rows) < self.chunk_rows
                upper = None if last else changes[-1].key
                extra: Mapping[str, Any] = {}
                if self.on_first_mark is not None and self.state.get("stream_start") is None:
                    extra = self.on_first_mark(mark)
                await self.state.commit(
                    {**extra, f"snapshot.{table}": {"done": last, "after": upper}},
                    chunk=ChunkMark(table, seq, upper, mark),
                )
                seq += 1
                after = list(upper) if upper is not None else None
                if last:
                    log.info("%s: snapshot of %s done", self.source, table)
                    break
        return True


Seen = Callable[[Mapping[str, Any], Any], bool]
"""Whether a chunk with this mark already saw the change at this stream position."""


class SnapshotFilter:
    """Skips stream changes that a snapshot chunk already carried.

    Args:
        state: where the chunk marks are.
        tables: the snapshotted tables.
        seen: ``seen(mark, position)`` for the mechanism (binlog position or xid).
    """

    def __init__(self, state: CaptureState, tables: Sequence[str], seen: Seen) -> None:
        self._seen = seen
        self._chunks: dict[str, list[ChunkMark]] = {}
        self._uppers: dict[str, list[tuple[Any, ...]]] = {}
        for table in tables:
            chunks = state.chunks(table)
            if chunks:
                self._chunks[table] = chunks
                self._uppers[table] = [c.upper for c in chunks if c.upper is not None]

    @property
    def active(self) -> bool:
        return bool(self._chunks)

    def marks(self) -> list[Mapping[str, Any]]:
        """Every chunk's mark (to know when the stream is past all of them)."""
        return [c.mark for chunks in self._chunks.values() for c in chunks]

    def skip(self, change: Change, position: Any) -> bool:
        """True when the chunk holding ``change``'s key already saw it."""
        chunks = self._chunks.get(change.table)
        if not chunks:
            return False
        uppers = self._uppers[change.table]
        try:
            index = bisect.bisect_left(uppers, tuple(change.key))
        except TypeError:
            return False  # keys of mixed types: send it (a duplicate is harmless)
        if index >= len(chunks):
            return False
        # uppers[index - 1] < key <= uppers[index]: chunk `index` read it (the last chunk,
        # open above, holds every key past the others).
        return self._seen(chunks[index].mark, position)

    def clear(self) -> None:
        """Forget the chunks: the stream is past every mark."""
        self._chunks.clear()
        self._uppers.clear()

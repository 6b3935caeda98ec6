"""MariaDB/MySQL binlog capture: inserts, updates and deletes read from the row-based
binary log, as a replica would (``mysql-replication``).

The library blocks on its socket, so a reader thread runs it and hands whole transactions
(or parts of very large ones) to the event loop through a bounded queue; the loop maps and
sends them, and commits the binlog position of the last complete transaction only after
Kafka acknowledged everything up to it. A restart resumes from that position (always a
transaction boundary, where a replica may start); changes of a transaction that was sent
but not committed are read again with the same event ids (``file:position:row``).

With ``snapshot: true`` the tables are snapshotted first (:mod:`.snapshot`) and the stream
starts at the binlog position of the first chunk. A position whose binlog file the server
has purged raises :class:`PositionLost` with how to take a new snapshot.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .base import CaptureSource
from .db import MariaDB
from .exceptions import PositionLost, SourceUnavailable
from .preflight import check_binlog, check_tables
from .snapshot import SnapshotFilter, Snapshotter, snapshot_done
from .types import Change, Mechanism, Op

__all__ = ["BinlogPosition", "BinlogSource"]

log = logging.getLogger("lintas.capture")

_ER_MASTER_FATAL_READING_BINLOG = 1236
_QUEUE_ITEMS = 16


@dataclass(frozen=True, slots=True, order=True)
class BinlogPosition:
    """A place in the binary log: ``file`` and byte ``pos``, ordered as the server writes."""

    index: int = field(repr=False)
    pos: int
    file: str = field(compare=False)

    @classmethod
    def of(cls, file: str, pos: int) -> BinlogPosition:
        suffix = file.rsplit(".", 1)[-1]
        return cls(int(suffix) if suffix.isdigit() else 0, int(pos), file)

    @classmethod
    def parse(cls, text: str) -> BinlogPosition:
        """``mariadb-bin.000003:1234[:row]`` -> its position."""
        file, pos = text.split(":")[:2]
        return cls.of(file, int(pos))

    def to_state(self) -> dict[str, Any]:
        return {"file": self.file, "pos": self.pos}

    def __str__(self) -> str:
        return f"{self.file}:{self.pos}"


@dataclass(slots=True)
class _Item:
    changes: list[Change]
    commit: BinlogPosition | None = None
    error: BaseException | None = None


class _Stopped(Exception):
    pass


class _Reader(threading.Thread):
    """Runs ``BinLogStreamReader`` and puts transactions on the loop's queue."""

    def __init__(self, source: BinlogSource, start: BinlogPosition, queue: asyncio.Queue[_Item]):
        super().__init__(name=f"binlog-{source.config.name}", daemon=True)
        self.source = source
        self.start_at = start
        self.queue = queue
        self.loop = asyncio.get_running_loop()
        self.stopping = threading.Event()
        self.stream: Any = None

    def put(self, item: _Item) -> None:
        future = asyncio.run_coroutine_threadsafe(self.queue.put(item), self.loop)
        while True:
            try:
                future.result(timeout=0.5)
                return
            except concurrent.futures.TimeoutError:
                if self.stopping.is_set():
                    future.cancel()
                    raise _Stopped from None

    def run(self) -> None:
        try:
            self._read()
        except _Stopped:
            pass
        except Exception as exc:  # handed to the loop, which decides what it means
            with contextlib.suppress(_Stopped, RuntimeError):
                self.put(_Item([], error=self.source.translate(exc, self.start_at)))
        finally:
            if self.stream is not None:
                with contextlib.suppress(Exception):
                    self.stream.close()

    def _read(self) -> None:
        from pymysqlreplication import BinLogStreamReader
        from pymysqlreplication.event import HeartbeatLogEvent, QueryEvent, RotateEvent, XidEvent
        from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

        source = self.source
        address = source.config.database
        heartbeat = source.settings.heartbeat_s
        self.stream = stream = BinLogStreamReader(
            connection_settings={
                "host": address.host,
                "port": address.port,
                "user": address.user,
                "password": address.password,
                "connect_timeout": 10,
                # A connection silent for this long (no event, no heartbeat) is dead.
                "read_timeout": max(10.0, heartbeat * 2),
            },
            server_id=source.config.server_id,
            log_file=self.start_at.file,
            log_pos=self.start_at.pos,
            resume_stream=True,
            blocking=True,
            only_events=[
                WriteRowsEvent,
                UpdateRowsEvent,
                DeleteRowsEvent,
                XidEvent,
                QueryEvent,
                RotateEvent,
                HeartbeatLogEvent,
            ],
            only_schemas=sorted({schema for schema, _ in source.tables}),
            only_tables=sorted({table for _, table in source.tables}),
            # The server sends a heartbeat each second when idle: the thread sees `stopping`
            # within a second, and the loop knows the connection is alive.
            slave_heartbeat=1.0,
            enable_logging=False,
            use_column_name_cache=not source.row_metadata,
        )
        batch = source.settings.batch_rows
        pending: list[Change] = []
        while not self.stopping.is_set():
            event = stream.fetchone()
            if event is None:
                continue
            if isinstance(event, WriteRowsEvent | UpdateRowsEvent | DeleteRowsEvent):
                pending += source.changes_of(event, stream.log_file)
                if len(pending) >= batch:  # a huge transaction: send it in parts
                    self.put(_Item(pending))
                    pending = []
            elif isinstance(event, XidEvent) or (
                isinstance(event, QueryEvent) and _query_text(event) != "BEGIN"
            ):
                self.put(_Item(pending, BinlogPosition.of(stream.log_file, event.packet.log_pos)))
                pending = []
            elif isinstance(event, RotateEvent) and not pending:
                self.put(_Item([], BinlogPosition.of(event.next_binlog, event.position)))


def _query_text(event: Any) -> str:
    query = event.query
    if isinstance(query, bytes):
        query = query.decode(errors="replace")
    return str(query).strip().upper()


class BinlogSource(CaptureSource):
    """Captures MariaDB/MySQL tables from the binary log; see the module docstring."""

    mechanism = Mechanism.BINLOG

    async def prepare(self) -> None:
        config = self.config
        self.db = MariaDB(
            config.database, source=config.name, application_name=self.application_name
        )
        await self.db.connect()
        self.row_metadata = await check_binlog(self.db, config)
        self.keys = await check_tables(self.db, config)
        self.tables: dict[tuple[str, str], str] = {}
        for name in config.tables:
            schema, table = self.db.split(name)
            self.tables[(schema.lower(), table.lower())] = name
        stored = self.state.get("binlog")
        if stored is None and not config.spec.snapshot:
            status = await self.db.fetch("SHOW MASTER STATUS")
            here = BinlogPosition.of(str(status[0]["file"]), int(status[0]["position"]))
            await self.state.commit({"binlog": here.to_state(), "stream_start": here.to_state()})
            stored = here.to_state()
        if stored is not None:
            await self._check_exists(BinlogPosition.of(stored["file"], stored["pos"]))

    async def _check_exists(self, position: BinlogPosition) -> None:
        files = [str(r["log_name"]) for r in await self.db.fetch("SHOW BINARY LOGS")]
        if position.file not in files:
            raise PositionLost(
                self.config.name,
                str(position),
                f"the server no longer has {position.file} (it keeps "
                f"{files[0] if files else 'no file'} onwards)",
                config=str(self.config.path),
            )

    async def close(self) -> None:
        reader = getattr(self, "reader", None)
        if reader is not None:
            reader.stopping.set()
            await asyncio.to_thread(reader.join, 10)
        db = getattr(self, "db", None)
        if db is not None:
            await db.close()

    def translate(self, exc: Exception, start: BinlogPosition) -> Exception:
        """The capture's error for what the reader thread raised."""
        import pymysql

        args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
        code = args[0] if args and isinstance(args[0], int) else None
        if code == _ER_MASTER_FATAL_READING_BINLOG:
            reason = str(args[1]) if len(args) > 1 else str(exc)
            return PositionLost(self.config.name, str(start), reason, config=str(self.config.path))
        if isinstance(exc, pymysql.err.MySQLError | OSError):
            return SourceUnavailable(self.config.name, f"binlog connection: {exc}")
        return exc

    def changes_of(self, event: Any, file: str) -> list[Change]:
        """The changes of one rows event (called in the reader thread)."""
        from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent

        name = self.tables.get((str(event.schema).lower(), str(event.table).lower()))
        if name is None:
            return []
        key = self.keys[name]
        when = dt.datetime.fromtimestamp(event.timestamp, dt.UTC)
        position = f"{file}:{event.packet.log_pos}"
        out: list[Change] = []
        for i, row in enumerate(event.rows):
            before: Mapping[str, Any] | None = None
            if isinstance(event, UpdateRowsEvent):
                op = Op.UPDATE
                before = _lower(row["before_values"])
                values = _lower(row["after_values"])
            else:
                op = Op.DELETE if isinstance(event, DeleteRowsEvent) else Op.INSERT
                values = _lower(row["values"])
            out.append(
                Change(
                    table=name,
                    op=op,
                    key=tuple(values.get(c) for c in key),
                    row=values,
                    before=before,
                    position=f"{position}:{i}",
                    committed_at=when,
                )
            )
        return out

    async def run(self, stop: asyncio.Event) -> None:
        if not snapshot_done(self.state, list(self.keys)):
            snapshotter = Snapshotter(
                self.db,
                self.state,
                self.send,
                self.keys,
                chunk_rows=self.settings.snapshot_chunk_rows,
                source=self.config.name,
                on_first_mark=lambda mark: {"binlog": dict(mark), "stream_start": dict(mark)},
            )
            if not await snapshotter.run(stop):
                return
        stored = self.state.get("binlog")
        await self._stream(BinlogPosition.of(stored["file"], stored["pos"]), stop)

    async def _stream(self, start: BinlogPosition, stop: asyncio.Event) -> None:
        snapshot = SnapshotFilter(self.state, list(self.keys), _binlog_seen)
        horizon = max(
            (BinlogPosition.of(m["file"], m["pos"]) for m in snapshot.marks()), default=None
        )
        queue: asyncio.Queue[_Item] = asyncio.Queue(_QUEUE_ITEMS)
        self.reader = _Reader(self, start, queue)
        self.reader.start()
        committed = start
        self.stats.position = str(start)
        log.info("%s: reading the binlog from %s", self.config.name, start)
        while not stop.is_set():
            try:
                item = await asyncio.wait_for(queue.get(), self.settings.poll_interval_s)
            except TimeoutError:
                continue
            changes: list[Change] = []
            boundary: BinlogPosition | None = None
            # Take whatever else is ready, up to a batch: batches grow with the load.
            while True:
                if item.error is not None:
                    raise item.error
                changes += item.changes
                boundary = item.commit or boundary
                if len(changes) >= self.settings.batch_rows or queue.empty():
                    break
                item = queue.get_nowait()
            if snapshot.active:
                kept = [
                    c for c in changes if not snapshot.skip(c, BinlogPosition.parse(c.position))
                ]
                self.stats.skipped += len(changes) - len(kept)
                changes = kept
                if horizon is not None and boundary is not None and boundary >= horizon:
                    snapshot.clear()
            if changes:
                await self.send(changes)
            if boundary is not None and boundary != committed:
                await self.state.commit({"binlog": boundary.to_state()})
                committed = boundary
                self.stats.position = str(boundary)


def _binlog_seen(mark: Mapping[str, Any], position: BinlogPosition) -> bool:
    return position <= BinlogPosition.of(mark["file"], mark["pos"])


def _lower(values: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in values.items()}

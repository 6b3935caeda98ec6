"""PostgreSQL logical decoding: inserts, updates and deletes read through a replication
slot with the built-in ``pgoutput`` plugin, in plain SQL.

asyncpg has no replication protocol, so the slot is read with
``pg_logical_slot_peek_binary_changes`` (which does not consume) and advanced with
``pg_replication_slot_advance`` only after Kafka acknowledged every event of the
transactions read. The slot is the durable position: a crash before the advance re-reads
the same transactions, whose event ids (commit LSN and change index) are the same. Why SQL
rather than psycopg's replication connection in a thread: nothing to install on the
source (pgoutput ships with PostgreSQL 10+), no thread, the "confirm only after
acknowledgement" rule is one statement, and a slot in use by another process refuses a
second reader by itself. The cost: changes are fetched by polling (``poll_interval_s`` when
idle; at once while there is a backlog) rather than pushed.

Each read asks for the transactions committed before the WAL position read just before it
(``upto_lsn``), so when fewer than a batch come back, everything before that position is
done and the slot advances to it even when no captured table changed: an idle source still
releases WAL (the heartbeat). ``max_slot_wal_keep_size`` bounds what an abandoned slot can
hold; :func:`slot_lag` reports it for the dashboard.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .base import CaptureSource
from .db import Postgres
from .exceptions import PositionLost, SourceUnavailable
from .pgoutput import (
    UNCHANGED_TOAST,
    Begin,
    Commit,
    Relation,
    RowChange,
    decode_message,
    format_lsn,
    parse_lsn,
)
from .preflight import check_logical, check_tables
from .snapshot import SnapshotFilter, Snapshotter, snapshot_done
from .types import Change, Mechanism, Op

__all__ = ["LogicalSource", "SlotLag", "slot_lag"]

log = logging.getLogger("lintas.capture")

_HEARTBEAT_PREFIX = "lintas.capture.heartbeat"


@dataclass(frozen=True, slots=True)
class SlotLag:
    """How far a replication slot is behind, for the dashboard and alerts.

    Attributes:
        slot: its name.
        active: whether a backend is reading it at this moment (the capture reads with short
            SQL calls, so mostly False even while it runs: judge by ``lag_bytes``).
        lag_bytes: WAL written since the position the capture confirmed.
        retained_bytes: WAL the slot keeps on disk (from its restart position).
        wal_status: ``reserved``, ``extended``, ``unreserved`` or ``lost`` (the slot is
            invalidated: a new snapshot is needed).
        safe_wal_size: bytes left before ``max_slot_wal_keep_size`` invalidates the slot,
            ``None`` when unbounded.
    """

    slot: str
    active: bool
    lag_bytes: int
    retained_bytes: int
    wal_status: str | None
    safe_wal_size: int | None


async def slot_lag(conn: Any, slot: str) -> SlotLag | None:
    """The lag of ``slot`` on the database ``conn`` (asyncpg) is connected to; None if absent.

    Needs only a login that may read ``pg_replication_slots`` (any role): the portal calls it
    with a monitoring login.
    """
    row = await conn.fetchrow(
        "SELECT active, wal_status, safe_wal_size, "
        "pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint AS lag, "
        "pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint AS retained "
        "FROM pg_replication_slots WHERE slot_name = $1",
        slot,
    )
    if row is None:
        return None
    return SlotLag(
        slot=slot,
        active=bool(row["active"]),
        lag_bytes=int(row["lag"] or 0),
        retained_bytes=int(row["retained"] or 0),
        wal_status=row["wal_status"],
        safe_wal_size=None if row["safe_wal_size"] is None else int(row["safe_wal_size"]),
    )


def _xid_visible(mark: Mapping[str, Any], xid: int) -> bool:
    """Whether transaction ``xid`` (32 bits, from pgoutput) was visible to a snapshot."""
    xmax = int(mark["xmax"])
    # Widen to 64 bits: the xid is within 2^31 of the snapshot's horizon, before or after it
    # (a transaction that started after the snapshot has a larger xid than its xmax).
    delta = (xid - xmax) & 0xFFFFFFFF
    if delta >= 1 << 31:
        delta -= 1 << 32
    full = xmax + delta
    if full >= xmax:
        return False
    return full < int(mark["xmin"]) or full not in set(mark["xip"])


class LogicalSource(CaptureSource):
    """Captures PostgreSQL tables through a pgoutput slot; see the module docstring."""

    mechanism = Mechanism.LOGICAL

    async def prepare(self) -> None:
        config = self.config
        self.db = Postgres(
            config.database, source=config.name, application_name=self.application_name
        )
        await self.db.connect()
        self.keys = await check_tables(self.db, config)
        await check_logical(self.db, config)
        self.tables = {".".join(self.db.split(name)).lower(): name for name in config.tables}
        slot = config.slot
        rows = await self.db.fetch(
            "SELECT plugin, database, wal_status FROM pg_replication_slots WHERE slot_name = $1",
            slot,
        )
        if rows and rows[0]["wal_status"] == "lost":
            raise PositionLost(
                config.name,
                f"slot {slot}",
                "the slot was invalidated: it held more WAL than max_slot_wal_keep_size allows",
                config=str(config.path),
            )
        if rows and (
            rows[0]["plugin"] != "pgoutput" or rows[0]["database"] != config.database.database
        ):
            raise PositionLost(
                config.name,
                f"slot {slot}",
                f"the slot exists but belongs to another database or plugin ({rows[0]['plugin']})",
                config=str(config.path),
            )
        if not rows:
            if self.state.get("logical") is not None:
                raise PositionLost(
                    config.name, f"slot {slot}", "the slot was dropped", config=str(config.path)
                )
            # Created before the snapshot: every transaction committed after this point
            # is decoded, and the snapshot's chunks say which of them they already saw.
            created = await self.db.fetch(
                "SELECT lsn::text AS lsn FROM pg_create_logical_replication_slot($1, 'pgoutput')",
                slot,
            )
            await self.state.commit({"logical": {"slot": slot, "lsn": created[0]["lsn"]}})
            log.info("%s: created replication slot %s at %s", config.name, slot, created[0]["lsn"])

    async def close(self) -> None:
        db = getattr(self, "db", None)
        if db is not None:
            await db.close()

    async def run(self, stop: asyncio.Event) -> None:
        if self.config.spec.snapshot and not snapshot_done(self.state, list(self.keys)):
            snapshotter = Snapshotter(
                self.db,
                self.state,
                self.send,
                self.keys,
                chunk_rows=self.settings.snapshot_chunk_rows,
                source=self.config.name,
            )
            if not await snapshotter.run(stop):
                return
        snapshot = SnapshotFilter(self.state, list(self.keys), _xid_visible)
        last_heartbeat = time.monotonic()
        while not stop.is_set():
            more = await self._read_once(snapshot)
            if more:
                continue
            if time.monotonic() - last_heartbeat >= self.settings.heartbeat_s:
                # A WAL record in this database: the slot moves on even when the captured
                # tables are idle and other databases of the cluster write a lot.
                await self.db.execute(
                    "SELECT pg_logical_emit_message(false, $1, '')", _HEARTBEAT_PREFIX
                )
                last_heartbeat = time.monotonic()
            if await self.pause(stop, self.settings.poll_interval_s):
                return

    async def _read_once(self, snapshot: SnapshotFilter) -> bool:
        """Read, send and confirm one batch; True when more is waiting."""
        conn = self.db.connection
        slot = self.config.slot
        batch = self.settings.batch_rows
        try:
            upto = await conn.fetchval("SELECT pg_current_wal_lsn()::text")
            rows = await conn.fetch(
                "SELECT data FROM pg_logical_slot_peek_binary_changes($1, $2::text::pg_lsn, $3, "
                "'proto_version', '1', 'publication_names', $4)",
                slot,
                upto,
                batch,
                self.config.publication,
            )
        except Exception as exc:
            raise self._translate(exc) from exc
        relations: dict[int, Relation] = {}
        changes: list[Change] = []
        end_lsn: int | None = None
        current: Begin | None = None
        index = 0
        for row in rows:
            message = decode_message(bytes(row["data"]), relations)
            if isinstance(message, Begin):
                current, index = message, 0
            elif isinstance(message, RowChange) and current is not None:
                change = self._change(message, current, index)
                index += 1
                if change is None:
                    continue
                if snapshot.active and snapshot.skip(change, current.xid):
                    self.stats.skipped += 1
                    continue
                changes.append(change)
            elif isinstance(message, Commit):
                end_lsn = message.end_lsn
                current = None
        truncated = len(rows) >= batch
        if changes:
            await self.send(changes)
        # Confirm only what was sent: the whole range when it was read to the end, else up
        # to the last complete transaction.
        target = end_lsn if truncated else parse_lsn(upto)
        if target is not None:
            await self._advance(target)
        if not truncated and snapshot.active:
            snapshot.clear()  # every transaction that a chunk could have seen is behind us
        return truncated

    async def _advance(self, lsn: int) -> None:
        conn = self.db.connection
        try:
            confirmed = await conn.fetchval(
                "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
                self.config.slot,
            )
            if confirmed is not None and parse_lsn(confirmed) >= lsn:
                return
            await conn.execute(
                "SELECT pg_replication_slot_advance($1, $2::text::pg_lsn)",
                self.config.slot,
                format_lsn(lsn),
            )
        except Exception as exc:
            raise self._translate(exc) from exc
        await self.state.commit({"logical": {"slot": self.config.slot, "lsn": format_lsn(lsn)}})
        self.stats.position = format_lsn(lsn)

    def _translate(self, exc: Exception) -> Exception:
        import asyncpg

        if isinstance(exc, asyncpg.exceptions.UndefinedObjectError):
            return PositionLost(
                self.config.name, f"slot {self.config.slot}", str(exc), config=str(self.config.path)
            )
        if isinstance(exc, asyncpg.exceptions.ObjectInUseError):
            return SourceUnavailable(self.config.name, f"{exc} (another capture reads the slot?)")
        if isinstance(exc, asyncpg.PostgresError) and "invalidated" in str(exc):
            return PositionLost(
                self.config.name, f"slot {self.config.slot}", str(exc), config=str(self.config.path)
            )
        if isinstance(
            exc,
            OSError
            | asyncpg.InterfaceError
            | asyncpg.PostgresConnectionError
            | asyncpg.exceptions.OperatorInterventionError
            | TimeoutError,
        ):
            return SourceUnavailable(self.config.name, f"{type(exc).__name__}: {exc}")
        return exc

    def _change(self, message: RowChange, txn: Begin, index: int) -> Change | None:
        name = self.tables.get(message.relation.qualified.lower())
        if name is None:
            return None
        key = self.keys[name]
        if message.kind == "delete":
            row = dict(message.old or {})
            before = None
            op = Op.DELETE
        else:
            row = dict(message.new or {})
            before = dict(message.old) if message.old is not None else None
            op = Op.INSERT if message.kind == "insert" else Op.UPDATE
            if before is not None:
                # An unchanged TOASTed value is not sent again: take it from the old row.
                for column, value in row.items():
                    if value is UNCHANGED_TOAST:
                        row[column] = before.get(column)
        row = {k: (None if v is UNCHANGED_TOAST else v) for k, v in row.items()}
        return Change(
            table=name,
            op=op,
            key=tuple(row.get(c) for c in key),
            row=row,
            before=before,
            position=f"{format_lsn(txn.final_lsn)}:{index}",
            committed_at=txn.commit_time.astimezone(dt.UTC),
        )

"""Table polling: the capture that needs nothing but ``SELECT`` on the legacy tables.

Each table is read by its ``poll`` column:

- ``mode: key``: rows whose column (an AUTO_INCREMENT/serial id) is above the high-water
  mark, in order. Every row is an ``insert``. Rows whose transaction commits after a higher
  id was already read are missed, so prefer ``timestamp`` where the table has one.
- ``mode: timestamp``: rows whose column (``updated_at``, or a version the application
  increments) is at or above the high-water mark minus ``overlap_s``, in (column, key)
  order. The overlap catches transactions that committed late with an earlier time (the
  window is read again every half overlap, at most every 30 s); rows read again that were
  already sent (same key and content) are skipped. A row is an
  ``insert`` when ``created_column`` equals the polled column, an ``update`` otherwise,
  and a ``delete`` when ``deleted_column`` is set. The polled column must be set on insert
  (rows where it is NULL are not read).

The high-water mark is committed only after Kafka acknowledged the batch. Hard deletes are
invisible to polling: use a soft-delete column, or binlog/logical decoding.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import decimal
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .base import CaptureSource
from .config import PollOptions, TableConfig
from .db import MariaDB, Postgres, open_database
from .preflight import check_tables
from .types import Change, Mechanism, Op, row_digest

__all__ = ["PollingSource"]

log = logging.getLogger("lintas.capture")


def _truthy(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode(errors="replace")
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "n", "f", "false", "tidak")
    return bool(value)


def _position(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)


class _TablePoller:
    """The polling state of one table inside one process."""

    def __init__(self, table: TableConfig, key: Sequence[str]) -> None:
        assert table.poll is not None
        self.table = table
        self.poll: PollOptions = table.poll
        self.key = list(key)
        self.column = self.poll.column.lower()
        # (key, content digest) -> polled value, for rows sent within the overlap window.
        self.seen: dict[tuple[Any, ...], Any] = {}
        self.cursor: list[Any] | None = None
        """Where reading stands: (column, key...) of the last row read; None starts a pass
        at the high-water mark minus the overlap."""
        self.rescanned = time.monotonic()

    def lower_bound(self, mark: Any) -> Any:
        if isinstance(mark, dt.datetime):
            return mark - dt.timedelta(seconds=self.poll.overlap_s)
        if isinstance(mark, int | float | decimal.Decimal) and not isinstance(mark, bool):
            return mark  # a version number: no time overlap to apply
        return mark

    def op_of(self, row: Mapping[str, Any]) -> Op:
        if self.poll.mode == "key":
            return Op.INSERT
        if self.poll.deleted_column and _truthy(row.get(self.poll.deleted_column.lower())):
            return Op.DELETE
        created = self.poll.created_column
        if created is not None and row.get(created.lower()) == row.get(self.column):
            return Op.INSERT
        return Op.UPDATE


class PollingSource(CaptureSource):
    """Polls every table of a source in turn; see the module docstring."""

    mechanism = Mechanism.POLLING

    async def prepare(self) -> None:
        self.db: MariaDB | Postgres = open_database(
            self.config.database, source=self.config.name, application_name=self.application_name
        )
        await self.db.connect()
        keys = await check_tables(self.db, self.config)
        self.pollers = {name: _TablePoller(t, keys[name]) for name, t in self.config.tables.items()}

    async def close(self) -> None:
        db = getattr(self, "db", None)
        if db is not None:
            await db.close()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            busy = False
            for poller in self.pollers.values():
                if stop.is_set():
                    return
                busy |= await self._poll(poller)
            if not busy and await self.pause(stop, self.settings.poll_interval_s):
                return

    async def _poll(self, poller: _TablePoller) -> bool:
        """One page of one table; True when there may be more to read right away."""
        if poller.poll.mode == "key":
            return await self._poll_key(poller)
        return await self._poll_timestamp(poller)

    async def _poll_key(self, poller: _TablePoller) -> bool:
        name = poller.table.name
        stored = self.state.get(f"poll.{name}")
        after = [stored["value"]] if stored else None
        batch = self.settings.batch_rows
        rows = await self.db.select_after(name, [poller.column], after, batch)
        if not rows:
            return False
        changes = [
            Change(
                table=name,
                op=Op.INSERT,
                key=tuple(row[c] for c in poller.key),
                row=row,
                position=f"key:{_position(row[poller.column])}",
            )
            for row in rows
        ]
        await self.send(changes)
        last = rows[-1][poller.column]
        await self.state.commit({f"poll.{name}": {"value": last}})
        self.stats.position = f"{name}:{_position(last)}"
        return len(rows) == batch

    async def _poll_timestamp(self, poller: _TablePoller) -> bool:
        name = poller.table.name
        stored = self.state.get(f"poll.{name}")
        mark = stored["value"] if stored else None
        db = self.db
        order = [db.quote(poller.column), *await db.key_order(name, poller.key)]
        args: list[Any] = []
        where: list[str] = []
        if poller.cursor is not None:
            condition, args = db.keyset_after(order, poller.cursor)
            where.append(condition)
        elif mark is not None:
            where.append(f"{db.quote(poller.column)} >= {db.param(0)}")
            args.append(poller.lower_bound(mark))
        else:
            where.append(f"{db.quote(poller.column)} IS NOT NULL")
        batch = self.settings.batch_rows
        sql = f"SELECT * FROM {db.quote(name)} WHERE {' AND '.join(where)} "
        sql += f"ORDER BY {', '.join(order)} LIMIT {int(batch)}"
        rows = await db.fetch(sql, *args)
        changes: list[Change] = []
        fresh: list[tuple[tuple[Any, ...], Any]] = []
        for row in rows:
            key = tuple(row[c] for c in poller.key)
            digest = row_digest(row)
            if (key, digest) in poller.seen:
                continue
            version = row[poller.column]
            changes.append(
                Change(
                    table=name,
                    op=poller.op_of(row),
                    key=key,
                    row=row,
                    position=f"{_position(version)}:{digest}",
                )
            )
            fresh.append(((key, digest), version))
        if changes:
            await self.send(changes)
        if rows:
            top = rows[-1][poller.column]
            new_mark = top if mark is None or top > mark else mark
            if new_mark != mark:
                await self.state.commit({f"poll.{name}": {"value": new_mark}})
                self.stats.position = f"{name}:{_position(new_mark)}"
            poller.seen.update(fresh)
            poller.cursor = [top, *(rows[-1][c] for c in poller.key)]
        if len(rows) < batch:
            # Caught up. The next passes go on after the last row read; every half overlap
            # (at most 30 s) one starts again at the mark minus the overlap, to find rows
            # that committed late with an earlier time. Re-reading the whole window on
            # every pass would cost a window of rows per poll interval.
            now = time.monotonic()
            if now - poller.rescanned >= min(poller.poll.overlap_s / 2, 30.0):
                poller.cursor = None
                poller.rescanned = now
                self._forget_old(poller)
            return False
        return True

    def _forget_old(self, poller: _TablePoller) -> None:
        stored = self.state.get(f"poll.{poller.table.name}")
        if not stored:
            return
        bound = poller.lower_bound(stored["value"])
        with contextlib.suppress(TypeError):  # values of mixed types: keep them all
            poller.seen = {k: v for k, v in poller.seen.items() if v >= bound}

"""Idempotent handlers: a table of the event ids a subscriber has already handled.

The SDK delivers at least once: after a crash, events whose handler returned since the last
commit come again, and so does any event the routing stage wrote twice. A handler whose
effect must happen once marks the event id in the same transaction as its own writes, in its
own database::

    seen = SeenEvents(consumer="dinsos-app")
    await seen.create_table(pool)                        # once, at start (idempotent)

    async def handle(event):
        async with pool.acquire() as conn, conn.transaction():
            if not await seen.first_time(conn, event.id):
                return                                   # handled before: do nothing
            await conn.execute("UPDATE penerima SET aktif = false WHERE nik = $1", event.subject)

If the handler fails, its transaction rolls back and takes the mark with it, so the retry is
a first time again. Old marks can be pruned once redeliveries of them are impossible (after
the delivery topic's retention).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

__all__ = ["SeenEvents"]

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class SeenEvents:
    """Marks handled event ids in a PostgreSQL table (asyncpg).

    Args:
        consumer: whose marks (one table can serve several subscribers or handlers).
        table: the table's name (created by :meth:`create_table`).
        schema: its schema.

    Raises:
        ValueError: ``table`` or ``schema`` is not a plain lowercase SQL identifier.
    """

    def __init__(
        self, *, consumer: str, table: str = "lintas_seen_events", schema: str = "public"
    ) -> None:
        for what, name in (("table", table), ("schema", schema)):
            if not _IDENT.fullmatch(name):
                raise ValueError(f"{what} {name!r} must be a lowercase SQL identifier")
        self.consumer = consumer
        self.qualified = f'"{schema}"."{table}"'

    async def create_table(self, db: Any) -> None:
        """Create the table if it does not exist (``db``: asyncpg pool or connection)."""
        await db.execute(
            f"CREATE TABLE IF NOT EXISTS {self.qualified} ("
            "consumer text NOT NULL, event_id text NOT NULL, "
            "seen_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (consumer, event_id))"
        )

    async def first_time(self, conn: Any, event_id: str) -> bool:
        """Mark ``event_id``; True when it was not marked before.

        Call it inside the transaction that makes the handler's changes: the mark commits
        or rolls back with them.
        """
        inserted = await conn.fetchval(
            f"INSERT INTO {self.qualified} (consumer, event_id) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING RETURNING true",
            self.consumer,
            event_id,
        )
        return bool(inserted)

    async def seen(self, db: Any, event_id: str) -> bool:
        """Whether ``event_id`` is marked (without marking it)."""
        return bool(
            await db.fetchval(
                f"SELECT true FROM {self.qualified} WHERE consumer = $1 AND event_id = $2",
                self.consumer,
                event_id,
            )
        )

    async def prune(self, db: Any, *, older_than: dt.timedelta) -> int:
        """Forget marks older than ``older_than``; returns how many."""
        result = await db.execute(
            f"DELETE FROM {self.qualified} WHERE consumer = $1 AND seen_at < now() - $2::interval",
            self.consumer,
            older_than,
        )
        return int(str(result).rsplit(" ", 1)[-1])

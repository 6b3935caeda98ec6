"""The transactional outbox relay, for applications that can change a little.

The application writes each event into an outbox table in the same transaction as its own
change (so an event exists exactly when the change committed), and the relay publishes the
rows in id order and marks them sent. A row is published until it is marked: a crash
between Kafka's acknowledgement and the mark sends it again with the same event id (the
row's ``event_id``, or one derived from the source and the row id), which downstream dedup
drops: each row id reaches consumers once.

A row whose event type is unknown or whose payload breaks its contract goes to the
dead-letter topic with the row id and the reason, and is marked (``error`` says why), so it
never blocks the rows behind it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from typing import Any

import orjson
from pydantic import ValidationError

from lintas.producers import Event
from lintas.schemas import UnknownEventType, field_errors, load_catalog, model_for

from .base import CaptureSource
from .db import MariaDB, Postgres, open_database
from .deadletter import DeadRow
from .exceptions import SourceMisconfigured
from .publisher import Outcome
from .transforms import localize
from .types import CAPTURE_NAMESPACE, Change, Mechanism, Op

__all__ = ["OUTBOX_COLUMNS", "OutboxRelay", "outbox_ddl"]

log = logging.getLogger("lintas.capture")

OUTBOX_COLUMNS = (
    "id",
    "event_id",
    "event_type",
    "payload",
    "subject",
    "occurred_at",
    "sent_at",
    "error",
)
"""The columns the relay reads and writes."""

_CLEANUP_EVERY_S = 3600.0
_KEEP_DAYS = 7


def outbox_ddl(dialect: str, table: str = "lintas_outbox") -> str:
    """The documented outbox table, for ``postgresql`` or ``mariadb``."""
    if dialect == "postgresql":
        return f"""CREATE TABLE {table} (
    id          bigserial PRIMARY KEY,          -- publication order
    event_id    uuid,                           -- CloudEvents id, derived from id when null
    event_type  text NOT NULL,                  -- e.g. dukcapil.kematian_dicatat.v1
    payload     jsonb NOT NULL,                 -- the event's fields, as in its contract
    subject     text,                           -- ce_subject, the subject field when null
    occurred_at timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,                    -- set by the relay once Kafka has it
    error       text                            -- why it was dead-lettered, if it was
);
CREATE INDEX {table}_unsent ON {table} (id) WHERE sent_at IS NULL;
"""
    return f"""CREATE TABLE {table} (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    event_id    CHAR(36) NULL,
    event_type  VARCHAR(200) NOT NULL,
    payload     LONGTEXT NOT NULL CHECK (JSON_VALID(payload)),
    subject     VARCHAR(200) NULL,
    occurred_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    sent_at     DATETIME(3) NULL,
    error       TEXT NULL,
    KEY {table}_unsent (sent_at, id)
) ENGINE=InnoDB;
"""


class OutboxRelay(CaptureSource):
    """Publishes an outbox table's rows in id order and marks them sent."""

    mechanism = Mechanism.OUTBOX

    async def prepare(self) -> None:
        config = self.config
        self.table = config.spec.outbox.table
        self.db: MariaDB | Postgres = open_database(
            config.database, source=config.name, application_name=self.application_name
        )
        await self.db.connect()
        columns = await self.db.columns(self.table)
        missing = [c for c in OUTBOX_COLUMNS if c not in columns]
        if missing:
            what = (
                f"the outbox table {self.table} does not exist or cannot be read"
                if not columns
                else f"the outbox table {self.table} lacks column(s) {', '.join(missing)}"
            )
            raise SourceMisconfigured(
                config.name,
                "outbox",
                [
                    f"{what}: create it as `lintas capture outbox-ddl` prints, and grant the "
                    f"capture's user SELECT and UPDATE (and DELETE, to clean up) on it"
                ],
            )
        self.catalog = load_catalog()
        self._last_cleanup = 0.0

    async def close(self) -> None:
        db = getattr(self, "db", None)
        if db is not None:
            await db.close()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            busy = await self._relay_once()
            if time.monotonic() - self._last_cleanup > _CLEANUP_EVERY_S:
                await self._cleanup()
            if not busy and await self.pause(stop, self.settings.poll_interval_s):
                return

    async def _relay_once(self) -> bool:
        db = self.db
        batch = self.settings.batch_rows
        rows = await db.fetch(
            f"SELECT * FROM {db.quote(self.table)} WHERE sent_at IS NULL "
            f"ORDER BY id LIMIT {int(batch)}"
        )
        if not rows:
            return False
        events: list[Event] = []
        sent_ids: list[Any] = []
        dead: list[tuple[DeadRow, Any]] = []
        for row in rows:
            built = self._event(row)
            if isinstance(built, DeadRow):
                dead.append((built, row["id"]))
            else:
                events.append(built)
                sent_ids.append(row["id"])
        outcome = Outcome()
        if events:
            deliveries = await self.publisher.producer.send_many(events)
            sent = sum(1 for d in deliveries if d.sent)
            outcome = Outcome(sent=sent, spooled=len(deliveries) - sent)
        await self.publisher.dead_letters.send([d for d, _ in dead])
        # Marked only now: everything above is acknowledged or spooled.
        await self._mark(sent_ids, None)
        for letter, row_id in dead:
            await self._mark([row_id], letter.message[:1000])
        self.stats.add(Outcome(outcome.sent, outcome.spooled, len(dead)), len(rows))
        self.stats.position = f"{self.table}:{rows[-1]['id']}"
        return len(rows) == batch

    def _event(self, row: dict[str, Any]) -> Event | DeadRow:
        row_id = row["id"]
        event_id = (
            str(row["event_id"])
            if row.get("event_id")
            else str(
                uuid.uuid5(CAPTURE_NAMESPACE, f"{self.config.name}|outbox|{self.table}|{row_id}")
            )
        )
        type_id = str(row["event_type"])
        try:
            event_type = self.catalog.get(type_id)
            payload = row["payload"]
            data = orjson.loads(payload) if isinstance(payload, str | bytes) else payload
            model = model_for(event_type).model_validate(data)
        except UnknownEventType as exc:
            return self._dead(row, event_id, type_id, exc.message, "event_type")
        except orjson.JSONDecodeError as exc:
            return self._dead(row, event_id, type_id, f"payload is not JSON: {exc}", "payload")
        except ValidationError as exc:
            errors = field_errors(exc)
            message = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
            return self._dead(row, event_id, type_id, message, errors[0]["field"])
        occurred = row.get("occurred_at")
        if isinstance(occurred, dt.datetime):
            occurred = localize(occurred, self.config.zone)
        return Event(
            data=model,
            id=event_id,
            time=occurred if isinstance(occurred, dt.datetime) else None,
            subject=str(row["subject"]) if row.get("subject") else None,
        )

    def _dead(
        self, row: dict[str, Any], event_id: str, type_id: str, message: str, field: str
    ) -> DeadRow:
        log.warning(
            "%s: outbox row %s is not a valid event: %s", self.config.name, row["id"], message
        )
        change = Change(
            table=self.table,
            op=Op.INSERT,
            key=(row["id"],),
            row=row,
            position=f"outbox:{row['id']}",
        )
        return DeadRow(
            change=change,
            source=self.config.name,
            opd=self.config.spec.opd,
            event_type=type_id,
            event_id=event_id,
            message=message,
            field=field,
        )

    async def _mark(self, ids: list[Any], error: str | None) -> None:
        if not ids:
            return
        db = self.db
        now = dt.datetime.now(dt.UTC)
        if isinstance(db, MariaDB):
            now = now.replace(tzinfo=None)  # DATETIME holds no zone: UTC by convention
            marks = ", ".join(["%s"] * len(ids))
            await db.execute(
                f"UPDATE {db.quote(self.table)} SET sent_at = %s, error = %s WHERE id IN ({marks})",
                now,
                error,
                *ids,
            )
        else:
            await db.execute(
                f"UPDATE {db.quote(self.table)} SET sent_at = $1, error = $2 "
                "WHERE id = ANY($3::bigint[])",
                now,
                error,
                list(ids),
            )

    async def _cleanup(self) -> None:
        """Delete rows sent more than a week ago (without DELETE rights, keep them)."""
        self._last_cleanup = time.monotonic()
        db = self.db
        before = dt.datetime.now(dt.UTC) - dt.timedelta(days=_KEEP_DAYS)
        if isinstance(db, MariaDB):
            before = before.replace(tzinfo=None)
        try:
            await db.execute(
                f"DELETE FROM {db.quote(self.table)} WHERE sent_at < {db.param(0)}", before
            )
        except Exception as exc:  # no DELETE privilege: the table just grows
            log.info("%s: outbox rows not cleaned up (%s)", self.config.name, exc)

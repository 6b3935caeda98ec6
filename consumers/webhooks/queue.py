"""The delivery queue in PostgreSQL: events copied from Kafka, their attempts, their fate.

Why a queue in the database rather than delivering straight from Kafka: a Kafka partition is
consumed in order, so one subscriber's dead endpoint would hold back every event behind it,
other subscribers' included, and no offset could be committed past it. Copying each routed
event into this table, **in the same transaction as the consumed offsets**
(``lintas.webhook_offsets``), moves delivery off the partition: the copy never waits for an
endpoint, a restart seeks to the stored offsets and copies nothing twice, and each subscriber
is then served from its own rows at its own pace.

A row is ``pending`` until its POST succeeds (``delivered``) or it is given up (``dead``: a
4xx, an undecodable record, or its deadline passed); dead rows are then written to the
subscriber's dead-letter topic and stamped ``dead_lettered_at``. Every POST is logged in
``lintas.webhook_attempts``.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._lease import CHANNEL, notify_payload

__all__ = [
    "AttemptOutcome",
    "AttemptRecord",
    "DeadReason",
    "DeadRow",
    "Delivery",
    "DeliveryQueue",
    "QueuedEvent",
]

TopicPartitionKey = tuple[str, int]


class DeadReason(enum.StrEnum):
    """Why an event was given up (the ``lintas.dlq.reason`` of its dead letter)."""

    REJECTED = "rejected"
    """The endpoint answered with a 4xx other than 429 (or a redirect)."""
    RETRIES_EXHAUSTED = "retries_exhausted"
    """Not delivered before its deadline (``LINTAS_DELIVER__RETRY_HORIZON_S``)."""
    UNDECODABLE = "undecodable"
    """The delivery record could not be turned into a JSON body."""


class AttemptOutcome(enum.StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    """Failed, will be tried again."""
    REJECTED = "rejected"
    """Refused by the endpoint: dead-lettered, never retried."""
    GAVE_UP = "gave_up"
    """Failed, and the next try would fall after the deadline: dead-lettered."""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuedEvent:
    """One record of a delivery topic, as copied into the queue."""

    subscriber: str
    event_id: str
    event_type: str | None
    ordering_key: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]]
    body: bytes | None
    """The JSON to POST; None when the record could not be decoded (``dead_reason`` says)."""
    dead_reason: DeadReason | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """A pending event, as the dispatcher sends it."""

    id: int
    subscriber: str
    event_id: str
    ordering_key: str
    body: bytes
    attempts: int
    """Attempts made before this one."""
    deadline: dt.datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptRecord:
    """The result of one POST, as written to the queue and the attempt log."""

    delivery: Delivery
    attempted_at: dt.datetime
    latency_ms: float
    outcome: AttemptOutcome
    status_code: int | None = None
    error: str | None = None
    next_attempt_at: dt.datetime | None = None
    """For ``RETRY``: when to try again."""

    @property
    def dead_reason(self) -> DeadReason | None:
        if self.outcome is AttemptOutcome.REJECTED:
            return DeadReason.REJECTED
        if self.outcome is AttemptOutcome.GAVE_UP:
            return DeadReason.RETRIES_EXHAUSTED
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadRow:
    """A given-up event waiting to be written to its subscriber's dead-letter topic."""

    id: int
    subscriber: str
    event_id: str
    event_type: str | None
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    attempts: int
    last_status: int | None
    last_error: str | None
    dead_reason: str


_INSERT = """
INSERT INTO lintas.webhook_deliveries (subscriber, event_id, event_type, ordering_key, topic,
    partition, kafka_offset, record_key, record_value, header_names, header_values, body,
    state, deadline, dead_reason, last_error)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
"""
# A record copied twice (the routing stage is at-least-once) is queued once.
_ENQUEUE = _INSERT + " ON CONFLICT (subscriber, event_id) DO NOTHING"
# A redelivery revives the event if it is dead; a delivered or still pending one is left alone.
_REQUEUE = (
    _INSERT
    + """ ON CONFLICT (subscriber, event_id) DO UPDATE SET
    state = EXCLUDED.state, attempts = 0, enqueued_at = now(), next_attempt_at = now(),
    deadline = EXCLUDED.deadline, body = EXCLUDED.body, dead_reason = EXCLUDED.dead_reason,
    last_error = EXCLUDED.last_error, dead_lettered_at = NULL
    WHERE lintas.webhook_deliveries.state = 'dead'
    RETURNING id"""
)
_SAVE_OFFSET = """
INSERT INTO lintas.webhook_offsets (consumer_group, topic, partition, next_offset)
VALUES ($1, $2, $3, $4)
ON CONFLICT (consumer_group, topic, partition)
DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()
"""
# The oldest pending event of every key (only it may be sent: one in flight per key, in
# order), then those due now whose key is not already in flight here.
_DUE = """
SELECT id, event_id, ordering_key, body, attempts, deadline FROM (
    SELECT DISTINCT ON (ordering_key) id, event_id, ordering_key, body, attempts, deadline,
        next_attempt_at
    FROM lintas.webhook_deliveries
    WHERE subscriber = $1 AND state = 'pending'
    ORDER BY ordering_key, id
) AS heads
WHERE next_attempt_at <= now() AND NOT (ordering_key = ANY($2::text[]))
ORDER BY id
LIMIT $3
"""
_RECORD = """
UPDATE lintas.webhook_deliveries SET
    attempts = attempts + 1, last_attempt_at = $2::timestamptz, last_status = $3::integer,
    last_latency_ms = $4::real, last_error = $5::text, state = $6::text,
    next_attempt_at = coalesce($7::timestamptz, next_attempt_at),
    delivered_at = CASE WHEN $6::text = 'delivered' THEN $2::timestamptz END,
    dead_reason = $8::text
WHERE id = $1 AND state = 'pending'
"""
_LOG = """
INSERT INTO lintas.webhook_attempts (delivery_id, subscriber, event_id, attempt, attempted_at,
    status_code, latency_ms, outcome, error)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
"""


def _headers_columns(
    headers: Sequence[tuple[str, bytes | None]],
) -> tuple[list[str], list[bytes | None]]:
    return [name for name, _ in headers], [value for _, value in headers]


class DeliveryQueue:
    """The queue's SQL, over an asyncpg pool.

    Args:
        pool: an asyncpg pool on the platform database (migrated).
        group_id: the deliverers' consumer group: the key of their stored offsets.
    """

    def __init__(self, pool: Any, *, group_id: str) -> None:
        self._pool = pool
        self.group_id = group_id

    # -- copying from Kafka -----------------------------------------------------------

    async def stored_offsets(
        self, partitions: Iterable[TopicPartitionKey]
    ) -> dict[TopicPartitionKey, int]:
        """The next offset to copy of each partition that has one stored."""
        wanted = list(partitions)
        if not wanted:
            return {}
        rows = await self._pool.fetch(
            "SELECT topic, partition, next_offset FROM lintas.webhook_offsets "
            "WHERE consumer_group = $1 AND (topic, partition) IN "
            "(SELECT * FROM unnest($2::text[], $3::int[]))",
            self.group_id,
            [t for t, _ in wanted],
            [p for _, p in wanted],
        )
        return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}

    async def enqueue(
        self,
        events: Sequence[QueuedEvent],
        next_offsets: Mapping[TopicPartitionKey, int],
        *,
        deadline: dt.datetime,
    ) -> None:
        """Queue ``events`` and store ``next_offsets``, in one transaction.

        Args:
            events: the copied records, in offset order.
            next_offsets: per partition, the offset after the last record copied.
            deadline: when the events are given up if not delivered.
        """
        now = dt.datetime.now(dt.UTC)
        rows = [self._row(e, deadline=deadline, now=now) for e in events]
        async with self._pool.acquire() as conn, conn.transaction():
            if rows:
                await conn.executemany(_ENQUEUE, rows)
            await conn.executemany(
                _SAVE_OFFSET,
                [(self.group_id, t, p, off) for (t, p), off in next_offsets.items()],
            )
            if rows:
                # Delivered on commit, to the dispatching deliverer (see _lease.py).
                subscribers = {e.subscriber for e in events}
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, notify_payload(subscribers))

    async def requeue(self, events: Sequence[QueuedEvent], *, deadline: dt.datetime) -> int:
        """Queue dead-lettered events again (a redelivery); returns how many were revived.

        An event still pending or already delivered since is left as it is, so redelivering
        the same dead letters twice sends nothing twice.
        """
        now = dt.datetime.now(dt.UTC)
        revived = 0
        async with self._pool.acquire() as conn, conn.transaction():
            for event in events:
                row = self._row(event, deadline=deadline, now=now)
                if await conn.fetchval(_REQUEUE, *row) is not None:
                    revived += 1
            if revived:
                subscribers = {e.subscriber for e in events}
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, notify_payload(subscribers))
        return revived

    @staticmethod
    def _row(event: QueuedEvent, *, deadline: dt.datetime, now: dt.datetime) -> tuple[Any, ...]:
        names, values = _headers_columns(event.headers)
        dead = event.dead_reason is not None or event.body is None
        return (
            event.subscriber,
            event.event_id,
            event.event_type,
            event.ordering_key,
            event.topic,
            event.partition,
            event.offset,
            event.key,
            event.value,
            names,
            values,
            event.body,
            "dead" if dead else "pending",
            now if dead else deadline,
            (event.dead_reason or DeadReason.UNDECODABLE).value if dead else None,
            event.error,
        )

    # -- dispatching --------------------------------------------------------------------

    async def due(self, subscriber: str, *, busy_keys: Iterable[str], limit: int) -> list[Delivery]:
        """Up to ``limit`` events of ``subscriber`` that may be sent now, oldest first.

        Only the oldest pending event of a key qualifies, and none of a key in ``busy_keys``
        (in flight already): that is what keeps each key's events in order.
        """
        rows = await self._pool.fetch(_DUE, subscriber, list(busy_keys), limit)
        return [
            Delivery(
                id=r["id"],
                subscriber=subscriber,
                event_id=r["event_id"],
                ordering_key=r["ordering_key"],
                body=bytes(r["body"]),
                attempts=r["attempts"],
                deadline=r["deadline"],
            )
            for r in rows
        ]

    async def record(self, results: Sequence[AttemptRecord]) -> None:
        """Write attempts' results to their rows and to the attempt log, in one transaction."""
        if not results:
            return
        updates = []
        logs = []
        for r in results:
            d = r.delivery
            state = {
                AttemptOutcome.DELIVERED: "delivered",
                AttemptOutcome.RETRY: "pending",
            }.get(r.outcome, "dead")
            reason = r.dead_reason
            updates.append(
                (d.id, r.attempted_at, r.status_code, r.latency_ms, r.error, state,
                 r.next_attempt_at, reason.value if reason else None)
            )  # fmt: skip
            logs.append(
                (d.id, d.subscriber, d.event_id, d.attempts + 1, r.attempted_at, r.status_code,
                 r.latency_ms, r.outcome.value, r.error)
            )  # fmt: skip
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.executemany(_RECORD, updates)
            await conn.executemany(_LOG, logs)

    async def expire(self, subscriber: str, *, busy_ids: Iterable[int]) -> int:
        """Give up the subscriber's pending events past their deadline (not those in flight)."""
        result = await self._pool.execute(
            "UPDATE lintas.webhook_deliveries SET state = 'dead', dead_reason = $3, "
            "last_error = coalesce(last_error, 'not attempted before its deadline') "
            "WHERE subscriber = $1 AND state = 'pending' AND deadline <= now() "
            "AND NOT (id = ANY($2::bigint[]))",
            subscriber,
            list(busy_ids),
            DeadReason.RETRIES_EXHAUSTED.value,
        )
        return int(result.rsplit(" ", 1)[-1])

    async def save_circuit(
        self,
        subscriber: str,
        *,
        state: str,
        consecutive_failures: int,
        retry_at: dt.datetime | None,
    ) -> None:
        await self._pool.execute(
            "INSERT INTO lintas.webhook_circuits AS c (subscriber, state, consecutive_failures, "
            "opened_at, retry_at) VALUES ($1, $2::text, $3, "
            "CASE WHEN $2::text = 'open' THEN now() END, $4::timestamptz) "
            "ON CONFLICT (subscriber) DO UPDATE SET state = EXCLUDED.state, "
            "consecutive_failures = EXCLUDED.consecutive_failures, retry_at = EXCLUDED.retry_at, "
            "opened_at = CASE WHEN EXCLUDED.state = 'closed' THEN NULL "
            "WHEN c.state = 'closed' THEN now() ELSE c.opened_at END, updated_at = now()",
            subscriber,
            state,
            consecutive_failures,
            retry_at,
        )

    # -- dead letters and housekeeping --------------------------------------------------

    async def dead_rows(self, *, limit: int) -> list[DeadRow]:
        """Given-up events not yet written to a dead-letter topic, oldest first."""
        rows = await self._pool.fetch(
            "SELECT id, subscriber, event_id, event_type, topic, partition, kafka_offset, "
            "record_key, record_value, header_names, header_values, attempts, last_status, "
            "last_error, dead_reason FROM lintas.webhook_deliveries "
            "WHERE state = 'dead' AND dead_lettered_at IS NULL ORDER BY id LIMIT $1",
            limit,
        )
        return [
            DeadRow(
                id=r["id"],
                subscriber=r["subscriber"],
                event_id=r["event_id"],
                event_type=r["event_type"],
                topic=r["topic"],
                partition=r["partition"],
                offset=r["kafka_offset"],
                key=r["record_key"],
                value=r["record_value"],
                headers=list(zip(r["header_names"], r["header_values"], strict=True)),
                attempts=r["attempts"],
                last_status=r["last_status"],
                last_error=r["last_error"],
                dead_reason=r["dead_reason"] or DeadReason.RETRIES_EXHAUSTED.value,
            )
            for r in rows
        ]

    async def mark_dead_lettered(self, ids: Sequence[int]) -> None:
        await self._pool.execute(
            "UPDATE lintas.webhook_deliveries SET dead_lettered_at = now() "
            "WHERE id = ANY($1::bigint[])",
            list(ids),
        )

    async def prune(self, *, older_than: dt.timedelta) -> int:
        """Delete delivered and dead-lettered events (and their attempts) past retention."""
        result = await self._pool.execute(
            "DELETE FROM lintas.webhook_deliveries WHERE "
            "(state = 'delivered' AND delivered_at < now() - $1::interval) OR "
            "(state = 'dead' AND dead_lettered_at < now() - $1::interval)",
            older_than,
        )
        return int(result.rsplit(" ", 1)[-1])

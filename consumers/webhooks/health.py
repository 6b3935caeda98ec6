"""Per-subscriber delivery health, for the portal's dashboard and ``lintas deliver status``.

Read from the delivery queue and the attempt log, so it is right even when no deliverer is
running (then events pile up as ``pending`` and the status says so)::

    from lintas.consumers.webhooks import subscriber_health

    for h in await subscriber_health(pool, window=dt.timedelta(hours=1)):
        print(h.subscriber, h.status, h.pending, h.success_rate, h.latency_p95_ms)
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any

__all__ = ["HealthStatus", "SubscriberHealth", "subscriber_health"]


class HealthStatus(enum.StrEnum):
    """A subscriber's delivery in one word (the dashboard's colour)."""

    HEALTHY = "healthy"
    """Events were delivered or are on their first try, and nothing failed in the window."""
    DEGRADED = "degraded"
    """Attempts failed in the window, events wait for a retry, or events were given up."""
    FAILING = "failing"
    """The circuit is open: the endpoint failed repeatedly and is given a rest."""
    IDLE = "idle"
    """Nothing to deliver and nothing delivered in the window."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriberHealth:
    """One webhook subscriber's delivery, now and over the window.

    Attributes:
        subscriber: its name.
        status: the summary (see :class:`HealthStatus`).
        pending: events waiting to be delivered (first tries and retries).
        retrying: pending events that have failed at least once.
        oldest_pending_at: when the oldest pending event was queued.
        delivered: events delivered in the window.
        failed_attempts: attempts that failed in the window (each retry counts).
        dead: events given up in the window (sent, or about to be, to the DLQ).
        success_rate: delivered attempts / all attempts in the window (None without any).
        latency_p50_ms, latency_p95_ms: of the successful POSTs in the window.
        last_delivered_at: the latest delivery ever (within the log's retention).
        last_failure_at, last_status, last_error: the latest failed attempt.
        circuit: ``closed``, ``open`` or ``half_open``.
        circuit_retry_at: when an open circuit lets its next probe through.
    """

    subscriber: str
    status: HealthStatus
    pending: int
    retrying: int
    oldest_pending_at: dt.datetime | None
    delivered: int
    failed_attempts: int
    dead: int
    success_rate: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    last_delivered_at: dt.datetime | None
    last_failure_at: dt.datetime | None
    last_status: int | None
    last_error: str | None
    circuit: str
    circuit_retry_at: dt.datetime | None


_HEALTH = """
WITH subs AS (
    SELECT DISTINCT subscriber FROM lintas.webhook_deliveries
    WHERE $1::text IS NULL OR subscriber = $1
    UNION
    SELECT subscriber FROM lintas.webhook_circuits WHERE $1::text IS NULL OR subscriber = $1
),
queue AS (
    SELECT subscriber,
        count(*) FILTER (WHERE state = 'pending') AS pending,
        count(*) FILTER (WHERE state = 'pending' AND attempts > 0) AS retrying,
        min(enqueued_at) FILTER (WHERE state = 'pending') AS oldest_pending_at,
        count(*) FILTER (WHERE state = 'dead'
            AND coalesce(dead_lettered_at, last_attempt_at, enqueued_at) >= $2) AS dead
    FROM lintas.webhook_deliveries
    WHERE subscriber IN (SELECT subscriber FROM subs) AND state IN ('pending', 'dead')
    GROUP BY subscriber
),
attempts AS (
    SELECT subscriber,
        count(*) AS attempts,
        count(*) FILTER (WHERE outcome = 'delivered') AS delivered,
        count(*) FILTER (WHERE outcome <> 'delivered') AS failed,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms)
            FILTER (WHERE outcome = 'delivered') AS p50,
        percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)
            FILTER (WHERE outcome = 'delivered') AS p95
    FROM lintas.webhook_attempts
    WHERE subscriber IN (SELECT subscriber FROM subs) AND attempted_at >= $2
    GROUP BY subscriber
),
last_failure AS (
    SELECT DISTINCT ON (subscriber) subscriber, attempted_at, status_code, error
    FROM lintas.webhook_attempts
    WHERE subscriber IN (SELECT subscriber FROM subs) AND outcome <> 'delivered'
    ORDER BY subscriber, attempted_at DESC
),
last_delivery AS (
    SELECT subscriber, max(delivered_at) AS at FROM lintas.webhook_deliveries
    WHERE subscriber IN (SELECT subscriber FROM subs) AND state = 'delivered'
    GROUP BY subscriber
)
SELECT s.subscriber,
    coalesce(q.pending, 0) AS pending, coalesce(q.retrying, 0) AS retrying,
    q.oldest_pending_at, coalesce(q.dead, 0) AS dead, ld.at AS last_delivered_at,
    coalesce(a.attempts, 0) AS attempts, coalesce(a.delivered, 0) AS delivered,
    coalesce(a.failed, 0) AS failed, a.p50, a.p95,
    f.attempted_at AS last_failure_at, f.status_code AS last_status, f.error AS last_error,
    coalesce(c.state, 'closed') AS circuit, c.retry_at AS circuit_retry_at
FROM subs s
LEFT JOIN queue q USING (subscriber)
LEFT JOIN attempts a USING (subscriber)
LEFT JOIN last_failure f USING (subscriber)
LEFT JOIN last_delivery ld USING (subscriber)
LEFT JOIN lintas.webhook_circuits c USING (subscriber)
ORDER BY s.subscriber
"""


def _status(row: Any) -> HealthStatus:
    if row["circuit"] != "closed":
        return HealthStatus.FAILING
    if row["failed"] or row["retrying"] or row["dead"]:
        return HealthStatus.DEGRADED
    if row["delivered"] or row["pending"]:
        return HealthStatus.HEALTHY
    return HealthStatus.IDLE


async def subscriber_health(
    db: Any,
    *,
    subscriber: str | None = None,
    window: dt.timedelta = dt.timedelta(hours=1),
    now: dt.datetime | None = None,
) -> list[SubscriberHealth]:
    """The delivery health of every webhook subscriber that has a queue (or of one).

    Args:
        db: an asyncpg pool or connection on the platform database.
        subscriber: only this subscriber; None for all.
        window: how far back the counts, rates and latencies look.
        now: the end of the window (tests).

    Returns:
        One entry per subscriber, by name; a subscriber that never had an event routed to it
        has none.
    """
    since = (now or dt.datetime.now(dt.UTC)) - window
    rows = await db.fetch(_HEALTH, subscriber, since)
    return [
        SubscriberHealth(
            subscriber=r["subscriber"],
            status=_status(r),
            pending=r["pending"],
            retrying=r["retrying"],
            oldest_pending_at=r["oldest_pending_at"],
            delivered=r["delivered"],
            failed_attempts=r["failed"],
            dead=r["dead"],
            success_rate=(r["delivered"] / r["attempts"]) if r["attempts"] else None,
            latency_p50_ms=r["p50"],
            latency_p95_ms=r["p95"],
            last_delivered_at=r["last_delivered_at"],
            last_failure_at=r["last_failure_at"],
            last_status=r["last_status"],
            last_error=r["last_error"],
            circuit=r["circuit"],
            circuit_retry_at=r["circuit_retry_at"],
        )
        for r in rows
    ]

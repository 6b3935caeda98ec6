"""One dispatching deliverer per group: a PostgreSQL advisory lock, and wake-ups by NOTIFY.

Every deliverer copies (the consumer group shares the partitions out), but only the one that
holds the group's advisory lock dispatches, dead-letters and prunes: two dispatchers would
POST the same event twice and break the one-in-flight-per-key rule. The lock belongs to one
connection and goes with it, so when the dispatching deliverer dies (or loses its database),
a standby takes over within seconds.

The same connection LISTENs on :data:`CHANNEL`: each copy transaction NOTIFYs the subscribers
it queued events for, so the dispatcher starts on them at once whichever deliverer copied
them (PostgreSQL delivers a notification only when its transaction commits).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from lintas.postgres import connect

__all__ = ["CHANNEL", "DispatchLease", "notify_payload", "parse_payload"]

log = logging.getLogger(__name__)

CHANNEL = "lintas_webhook_queued"
# NOTIFY payloads must stay under 8000 bytes; past this, "*" wakes every subscriber.
_MAX_PAYLOAD = 7000
_CHECK_EVERY_S = 5.0


def notify_payload(subscribers: set[str]) -> str:
    payload = ",".join(sorted(subscribers))
    return payload if len(payload) <= _MAX_PAYLOAD else "*"


def parse_payload(payload: str) -> set[str] | None:
    """The subscribers a notification names; None means all of them."""
    return None if payload == "*" else {name for name in payload.split(",") if name}


class DispatchLease:
    """The dispatcher role of one consumer group.

    Usage::

        lease = DispatchLease(dsn, group_id="lintas-deliver", on_queued=dispatcher.notify)
        await lease.acquire()          # waits while another deliverer dispatches
        await lease.wait_lost()        # returns if the lock's connection is lost
        await lease.release()

    Args:
        dsn: the platform database.
        group_id: the deliverers' group (one lock per group).
        on_queued: called with the subscribers of each notification (None: all).
        retry: seconds between attempts to take the lock.
    """

    def __init__(
        self,
        dsn: str,
        *,
        group_id: str,
        on_queued: Callable[[set[str] | None], None],
        retry: float = 2.0,
    ) -> None:
        self._dsn = dsn
        self._key = f"lintas.deliver:{group_id}"
        self._on_queued = on_queued
        self._retry = retry
        self._conn: Any = None

    @property
    def held(self) -> bool:
        return self._conn is not None

    async def acquire(self) -> None:
        """Wait until this deliverer holds the lock (and listens for queued events)."""
        announced = False
        while True:
            try:
                conn = await connect(self._dsn, application_name="lintas-deliver-lease")
            except Exception as exc:
                log.warning("dispatch lease: database unreachable: %r", exc)
                await asyncio.sleep(self._retry)
                continue
            try:
                if await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", self._key):
                    await conn.add_listener(CHANNEL, self._notified)
                    self._conn = conn
                    log.info("dispatch lease taken: this deliverer dispatches")
                    return
            except Exception as exc:
                log.warning("dispatch lease: %r", exc)
            except BaseException:  # cancelled: leave no connection (and no lock) behind
                conn.terminate()
                raise
            with contextlib.suppress(Exception):
                await conn.close()
            if not announced:
                log.info("another deliverer dispatches; standing by (copying only)")
                announced = True
            await asyncio.sleep(self._retry)

    async def wait_lost(self) -> None:
        """Return when the lock's connection stops answering (the lock is gone with it)."""
        while True:
            await asyncio.sleep(_CHECK_EVERY_S)
            conn = self._conn
            if conn is None:
                return
            try:
                await asyncio.wait_for(conn.fetchval("SELECT 1"), _CHECK_EVERY_S)
            except Exception as exc:
                log.warning("dispatch lease lost: %r", exc)
                await self.release()
                return

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # Closing the session releases the lock; a dead connection cannot hold it anyway.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 5)

    def _notified(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        self._on_queued(parse_payload(payload))

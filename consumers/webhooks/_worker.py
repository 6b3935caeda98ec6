"""One subscriber's delivery loop: pick due events, POST them, write down what happened.

Invariants, and where they come from:

- **One event in flight per key, in order**: only the oldest pending event of a key is ever
  due (see :meth:`DeliveryQueue.due`), and a key stays busy here until the result of its POST
  is written; the next event of that key becomes due only then.
- **A slow or dead subscriber delays no one else**: each subscriber has its own loop, its own
  connection pool and its own circuit; no database connection is held during a POST.
- **Results are batched**: POSTs that finish together are written in one transaction, so the
  database sees one write per loop turn, not one per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from lintas.exceptions import LintasError

from ._keys import SigningKeys
from .breaker import CircuitBreaker
from .exceptions import DeliveryFailed, EndpointThrottled
from .queue import AttemptOutcome, AttemptRecord, Delivery, DeliveryQueue
from .retry import RetryPolicy
from .sender import WebhookSender

__all__ = ["SubscriberWorker", "Target"]

log = logging.getLogger(__name__)

# Deadlines are checked at most this often per subscriber (one UPDATE on an index).
_EXPIRE_EVERY_S = 1.0
# On stop, POSTs under way get this long to finish, so their results are not lost.
_STOP_GRACE_S = 5.0


@dataclass(frozen=True, slots=True)
class Target:
    """Where and whether a subscriber's events go, from the live directory."""

    url: str
    secret_ids: tuple[str, ...]
    active: bool
    app_id: str | None


class SubscriberWorker:
    """Delivers one subscriber's queued events until stopped.

    Args:
        name: the subscriber.
        target: its URL, secret ids and status (updated with :meth:`update`).
        queue: the delivery queue.
        keys: signers per subscriber.
        policy: backoff and horizon.
        breaker: the subscriber's circuit.
        sender: POSTs to the subscriber's endpoint.
        max_in_flight: concurrent POSTs.
        poll_interval: how often to look for due retries when nothing wakes the loop.
        on_delivered: called with the target after each delivered event (activity).
        on_dead: called when events were given up (wakes the dead-letterer).
    """

    def __init__(
        self,
        name: str,
        target: Target,
        *,
        queue: DeliveryQueue,
        keys: SigningKeys,
        policy: RetryPolicy,
        breaker: CircuitBreaker,
        sender: WebhookSender,
        max_in_flight: int,
        poll_interval: float,
        on_delivered: Callable[[Target], None],
        on_dead: Callable[[], None],
    ) -> None:
        self.name = name
        self.target = target
        self._queue = queue
        self._keys = keys
        self._policy = policy
        self.breaker = breaker
        self._sender = sender
        self._max_in_flight = max_in_flight
        self._poll_interval = poll_interval
        self._on_delivered = on_delivered
        self._on_dead = on_dead
        self._wake = asyncio.Event()
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        # Keys whose event is in flight or whose result is not yet written.
        self._busy_keys: dict[str, int] = {}
        self._results: list[AttemptRecord] = []
        self._last_expire = 0.0
        self._task: asyncio.Task[None] | None = None
        self.delivered = 0
        """Events delivered since start."""

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"deliver:{self.name}")

    async def stop(self) -> None:
        """Stop taking events; let POSTs under way finish briefly, write their results."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._in_flight:
            _, pending = await asyncio.wait(list(self._in_flight.values()), timeout=_STOP_GRACE_S)
            for t in pending:
                t.cancel()
            # A POST cut off here has no result: the event stays pending and is sent again
            # after a restart (the receiver deduplicates by webhook-id).
            await asyncio.gather(*pending, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._flush()
        await self._sender.aclose()

    def update(self, target: Target) -> None:
        self.target = target
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    # -- the loop -----------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                await self._flush()
                await self._expire()
                await self._fill()
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The database is away: results stay buffered, keys stay busy, nothing is
                # sent twice; try again shortly.
                log.warning("deliveries to %s paused: %r", self.name, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            await self._sleep()

    async def _sleep(self) -> None:
        timeout = self._poll_interval
        until_probe = self.breaker.seconds_until_retry()
        if until_probe is not None:
            timeout = max(min(timeout, until_probe), 0.01)
        if not self._wake.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()

    async def _fill(self) -> None:
        if not self.target.active:
            return
        slots = self.breaker.allowed(in_flight=len(self._in_flight), limit=self._max_in_flight)
        await self._save_circuit()
        if slots <= 0:
            return
        for delivery in await self._queue.due(self.name, busy_keys=self._busy_keys, limit=slots):
            self._busy_keys[delivery.ordering_key] = delivery.id
            self._in_flight[delivery.id] = asyncio.create_task(self._deliver(delivery))

    async def _flush(self) -> None:
        if not self._results:
            return
        results, self._results = self._results, []
        try:
            await self._queue.record(results)
        except BaseException:
            self._results[:0] = results  # written next time; their keys stay busy till then
            raise
        dead = False
        for r in results:
            self._busy_keys.pop(r.delivery.ordering_key, None)
            if r.outcome is AttemptOutcome.DELIVERED:
                self.delivered += 1
                self._on_delivered(self.target)
            elif r.outcome is not AttemptOutcome.RETRY:
                dead = True
        if dead:
            self._on_dead()
        await self._save_circuit()

    async def _expire(self) -> None:
        now = time.monotonic()
        if now - self._last_expire < _EXPIRE_EVERY_S:
            return
        self._last_expire = now
        if await self._queue.expire(self.name, busy_ids=self._busy_keys.values()):
            self._on_dead()

    async def _save_circuit(self) -> None:
        breaker = self.breaker
        if not breaker.changed:
            return
        breaker.changed = False
        wait = breaker.seconds_until_retry()
        retry_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=wait) if wait else None
        log.info("circuit of %s is %s", self.name, breaker.state.value)
        await self._queue.save_circuit(
            self.name,
            state=breaker.state.value,
            consecutive_failures=breaker.consecutive_failures,
            retry_at=retry_at,
        )

    # -- one POST -----------------------------------------------------------------------

    async def _deliver(self, delivery: Delivery) -> None:
        attempted_at = dt.datetime.now(dt.UTC)
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        retry_after: float | None = None
        try:
            target = self.target
            signer = await self._keys.signer(self.name, target.secret_ids)
            status = await self._sender.send(target.url, delivery.event_id, delivery.body, signer)
            outcome = AttemptOutcome.DELIVERED
            self.breaker.record_success()
        except DeliveryFailed as exc:
            status, error = exc.status_code, exc.reason
            if not exc.retriable:
                # The endpoint answered, so it is up: a rejection is no reason to open.
                self.breaker.record_success()
                outcome = AttemptOutcome.REJECTED
            else:
                outcome = AttemptOutcome.RETRY
                if isinstance(exc, EndpointThrottled):
                    retry_after = exc.retry_after
                    self.breaker.hold(retry_after or self._policy.delay(delivery.attempts + 1))
                else:
                    self.breaker.record_failure()
        except LintasError as exc:  # no signing secret, directory unreachable, ...
            outcome, error = AttemptOutcome.RETRY, str(exc)
        except (httpx.HTTPError, OSError, ValueError) as exc:
            outcome, error = AttemptOutcome.RETRY, f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # a bug must not lose the event: log it, try again later
            log.exception("delivering %s to %s failed unexpectedly", delivery.event_id, self.name)
            outcome, error = AttemptOutcome.RETRY, f"{type(exc).__name__}: {exc}"
        latency_ms = (time.perf_counter() - started) * 1000
        next_at = None
        if outcome is AttemptOutcome.RETRY:
            delay = self._policy.delay(delivery.attempts + 1, retry_after=retry_after)
            next_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay)
            if next_at >= delivery.deadline:
                outcome, next_at = AttemptOutcome.GAVE_UP, None
        if outcome is not AttemptOutcome.DELIVERED:
            log.info(
                "delivery %s to %s, attempt %d: %s (%s)",
                delivery.event_id,
                self.name,
                delivery.attempts + 1,
                outcome.value,
                error,
            )
        self._results.append(
            AttemptRecord(
                delivery=delivery,
                attempted_at=attempted_at,
                latency_ms=latency_ms,
                outcome=outcome,
                status_code=status,
                error=error,
                next_attempt_at=next_at,
            )
        )
        self._in_flight.pop(delivery.id, None)
        self._wake.set()

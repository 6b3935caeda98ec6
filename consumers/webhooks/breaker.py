"""A circuit breaker per subscriber: stop hammering an endpoint that keeps failing.

States::

    closed     deliveries flow; consecutive failures are counted
       │  threshold consecutive failures (5xx, timeouts, connection errors)
       ▼
    open       nothing is sent until ``retry_at``
       │  cooldown passed
       ▼
    half_open  one probe delivery at a time
       ├─ it succeeds  -> closed
       └─ it fails     -> open again, with twice the cooldown (up to ``max_cooldown``)

A 429 holds the circuit open for its ``Retry-After`` without counting as a failure: the
endpoint is up, it asks for less traffic. An endpoint that rejects an event (4xx) is up too,
so a rejection closes nothing and opens nothing: it counts as an answer.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable

__all__ = ["CircuitBreaker", "CircuitState"]


class CircuitState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """The circuit of one subscriber (used by its dispatcher only: no locking).

    Usage::

        breaker = CircuitBreaker(threshold=5, cooldown=30.0, max_cooldown=3600.0)
        if breaker.allowed(in_flight=n) > 0:
            ...send...
            breaker.record_success()      # or record_failure()

    Args:
        threshold: consecutive failures that open the circuit.
        cooldown: seconds the circuit stays open the first time.
        max_cooldown: the longest it stays open after repeated failed probes.
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        *,
        threshold: int,
        cooldown: float,
        max_cooldown: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.base_cooldown = cooldown
        self.max_cooldown = max(max_cooldown, cooldown)
        self._clock = clock
        self.state = CircuitState.CLOSED
        self.consecutive_failures = 0
        self.retry_at: float | None = None
        """Monotonic time when an open circuit lets a probe through."""
        self._cooldown = cooldown
        self.changed = False
        """Set on every state change; the dispatcher saves the state and clears it."""

    def allowed(self, *, in_flight: int, limit: int) -> int:
        """How many more deliveries may start now, given ``in_flight`` and the ``limit``."""
        if self.state is CircuitState.OPEN:
            if self.retry_at is not None and self._clock() < self.retry_at:
                return 0
            self._set(CircuitState.HALF_OPEN)
        if self.state is CircuitState.HALF_OPEN:
            return 0 if in_flight else 1
        return max(0, limit - in_flight)

    def seconds_until_retry(self) -> float | None:
        """Seconds until an open circuit lets a probe through; None unless open."""
        if self.state is not CircuitState.OPEN or self.retry_at is None:
            return None
        return max(0.0, self.retry_at - self._clock())

    def record_success(self) -> None:
        """An answer came back (2xx, or a 4xx rejection): the endpoint is up."""
        self.consecutive_failures = 0
        self._cooldown = self.base_cooldown
        if self.state is not CircuitState.CLOSED:
            self.retry_at = None
            self._set(CircuitState.CLOSED)

    def record_failure(self) -> None:
        """A 5xx, a timeout or a connection error."""
        self.consecutive_failures += 1
        if self.state is CircuitState.HALF_OPEN:
            # The probe failed: stay away longer each time, up to the maximum.
            self._cooldown = min(self._cooldown * 2, self.max_cooldown)
            self._open(self._cooldown)
        elif self.state is CircuitState.CLOSED and self.consecutive_failures >= self.threshold:
            self._open(self._cooldown)

    def hold(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (a 429's ``Retry-After``), without counting a failure."""
        until = self._clock() + max(0.0, seconds)
        if self.state is CircuitState.OPEN and self.retry_at is not None:
            until = max(until, self.retry_at)
        self.retry_at = until
        self._set(CircuitState.OPEN)

    def _open(self, seconds: float) -> None:
        self.retry_at = self._clock() + seconds
        self._set(CircuitState.OPEN)

    def _set(self, state: CircuitState) -> None:
        if state is not self.state:
            self.state = state
            self.changed = True

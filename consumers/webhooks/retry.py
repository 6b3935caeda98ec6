"""When to try a failed delivery again: exponential backoff with jitter, and ``Retry-After``.

The n-th retry waits ``min(maximum, initial * 2**(n-1))`` seconds with *equal jitter*: half of
it fixed, half random. The fixed half keeps a struggling endpoint from being hit again at
once; the random half spreads the retries of many events (and many deliverers) so they do not
arrive together when the endpoint comes back. A ``Retry-After`` the endpoint sent wins when it
asks for longer, up to ``maximum`` (an endpoint must not be able to park an event forever).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from lintas.settings import DeliverSettings

__all__ = ["RetryPolicy", "parse_retry_after"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Backoff between attempts and the horizon after which an event is given up.

    Usage::

        policy = RetryPolicy(initial=1.0, maximum=3600.0, horizon=86_400.0)
        policy.delay(3)                      # 2.0 to 4.0 seconds
        policy.delay(1, retry_after=120.0)   # 120.0: the endpoint asked for it

    Attributes:
        initial: seconds before the first retry.
        maximum: the longest wait between two attempts.
        horizon: seconds after queueing when an undelivered event is dead-lettered.
    """

    initial: float
    maximum: float
    horizon: float

    @classmethod
    def from_settings(cls, settings: DeliverSettings) -> RetryPolicy:
        return cls(
            initial=settings.backoff_initial_s,
            maximum=settings.backoff_max_s,
            horizon=settings.retry_horizon_s,
        )

    def delay(
        self,
        attempt: int,
        *,
        retry_after: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1 for the first).

        Args:
            attempt: how many attempts have failed so far (at least 1).
            retry_after: what the endpoint's ``Retry-After`` asked for, if anything.
            rand: the random source, in [0, 1) (tests pass a fixed one).
        """
        if attempt < 1:
            raise ValueError("attempt counts from 1")
        # 2**60 seconds is past any maximum; capping the exponent avoids a float overflow.
        base = min(self.maximum, self.initial * 2.0 ** min(attempt - 1, 60))
        delay = base / 2 + rand() * base / 2
        if retry_after is not None:
            delay = max(delay, min(max(retry_after, 0.0), self.maximum))
        return delay


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait: delay-seconds or an HTTP date.

    Returns:
        The delay (0 for a date in the past), or None when the header is absent or malformed
        (then the normal backoff applies).
    """
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; obsolete forms may come without a zone
        when = when.replace(tzinfo=dt.UTC)
    now = now or dt.datetime.now(dt.UTC)
    return max(0.0, (when - now).total_seconds())

"""Limits that keep one application from taking the gateway down: body size, rate, time.

The rate limit is a token bucket per application and per gateway process: an application
may publish ``rate_limit_per_s`` events per second on average and ``rate_limit_burst`` at
once. Several gateway processes behind a load balancer each apply it, so the platform-wide
limit is their number times the setting (documented in docs/gateway.md).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

from starlette.requests import ClientDisconnect, Request

from .exceptions import MalformedRequest, PayloadTooLarge, RateLimited, RequestTimedOut

__all__ = ["RateLimiter", "read_body"]


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class RateLimiter:
    """Token buckets per application.

    Usage::

        limiter = RateLimiter(rate=2000, burst=5000)
        limiter.take("siak", 1000)      # raises RateLimited with retry_after when empty

    Args:
        rate: events per second refilled.
        burst: the bucket's size, and what a new application starts with.
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(
        self, *, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, app_id: str, count: int) -> None:
        """Take ``count`` events from ``app_id``'s bucket, or refuse all of them.

        Raises:
            RateLimited: not enough tokens; ``retry_after`` is when there will be.
            ValueError: ``count`` is more than the bucket holds (could never pass).
        """
        if count > self.burst:
            raise ValueError(f"{count} events can never pass a bucket of {self.burst}")
        now = self._clock()
        bucket = self._buckets.get(app_id)
        if bucket is None:
            bucket = self._buckets[app_id] = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        if bucket.tokens < count:
            wait = (count - bucket.tokens) / self.rate
            raise RateLimited(app_id, max(1, math.ceil(wait)), rate=self.rate)
        bucket.tokens -= count


async def read_body(request: Request, *, limit: int, timeout: float) -> bytes:
    """The request body, refused early when it is too large or too slow.

    A declared ``Content-Length`` over the limit is refused before anything is read; a
    chunked body is counted as it arrives.

    Raises:
        PayloadTooLarge: over ``limit`` bytes.
        RequestTimedOut: not all there within ``timeout`` seconds (a slow or stalled client).
        MalformedRequest: the client went away, or Content-Length is not a number.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise MalformedRequest("Content-Length", "must be a number of bytes")
        if int(declared) > limit:
            raise PayloadTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(limit)
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimedOut(timeout) from None
    except ClientDisconnect:
        raise MalformedRequest("body", "the client disconnected before sending all of it") from None
    return b"".join(chunks)

"""One POST of one event to one subscriber, and what its answer means.

Each subscriber gets its own :class:`WebhookSender` and with it its own connection pool, so an
endpoint that hangs ties up only its own connections: a slow or dead subscriber never makes
another wait for a connection.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

import httpx

from lintas import __version__

from .exceptions import (
    DeliveryFailed,
    EndpointError,
    EndpointRejected,
    EndpointThrottled,
    EndpointTimeout,
    EndpointUnreachable,
)
from .retry import parse_retry_after
from .signing import WebhookSigner

__all__ = ["WebhookSender"]

# Enough of an error answer to tell the operator what the endpoint said; the rest is dropped.
_ERROR_SNIPPET_BYTES = 512
_USER_AGENT = f"lintas-deliverer/{__version__}"


class WebhookSender:
    """POSTs signed events to one subscriber's endpoint.

    Usage::

        sender = WebhookSender("dinsos-app", timeout=10.0, connect_timeout=5.0, max_connections=16)
        status = await sender.send(url, event_id, body, signer)   # raises DeliveryFailed
        await sender.aclose()

    Args:
        subscriber: the subscriber's name (for errors).
        timeout: seconds for the whole answer.
        connect_timeout: seconds to establish a connection.
        max_connections: the pool's size (the dispatcher's in-flight limit).
        transport: an httpx transport (tests).
        clock: Unix seconds, for ``webhook-timestamp``.
    """

    def __init__(
        self,
        subscriber: str,
        *,
        timeout: float,
        connect_timeout: float,
        max_connections: int,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.subscriber = subscriber
        self._clock = clock
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            # A webhook endpoint that redirects is misconfigured: a POST must not wander off
            # (and take its signature with it) to wherever a Location header points.
            follow_redirects=False,
            transport=transport,
            headers={"User-Agent": _USER_AGENT},
        )

    async def send(self, url: str, event_id: str, body: bytes, signer: WebhookSigner) -> int:
        """POST ``body`` to ``url``, signed; the status code when it was accepted (2xx).

        Raises:
            EndpointUnreachable, EndpointTimeout, EndpointError, EndpointThrottled: retriable.
            EndpointRejected: any other answer; retrying would not change it.
        """
        headers = signer.headers(event_id, body, timestamp=int(self._clock()))
        headers["Content-Type"] = "application/json"
        request = self._client.build_request("POST", url, content=body, headers=headers)
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise EndpointTimeout(self.subscriber, event_id, _describe(exc)) from exc
        except httpx.HTTPError as exc:  # connect/read errors, protocol errors
            raise EndpointUnreachable(self.subscriber, event_id, _describe(exc)) from exc
        try:
            status = response.status_code
            if 200 <= status < 300:
                # Read the (usually empty) body so the connection can be reused.
                await response.aread()
                return status
            raise await self._failure(response, event_id)
        except httpx.TimeoutException as exc:
            raise EndpointTimeout(self.subscriber, event_id, _describe(exc)) from exc
        except httpx.HTTPError as exc:
            raise EndpointUnreachable(self.subscriber, event_id, _describe(exc)) from exc
        finally:
            await response.aclose()

    async def _failure(self, response: httpx.Response, event_id: str) -> DeliveryFailed:
        status = response.status_code
        snippet = await _snippet(response)
        reason = f"HTTP {status}" + (f": {snippet}" if snippet else "")
        if status == 429:
            retry_after = parse_retry_after(
                response.headers.get("Retry-After"), now=dt.datetime.now(dt.UTC)
            )
            return EndpointThrottled(self.subscriber, event_id, reason, retry_after=retry_after)
        if status >= 500:
            return EndpointError(self.subscriber, event_id, reason, status_code=status)
        if 300 <= status < 400:
            where = response.headers.get("Location", "?")
            reason = f"HTTP {status} redirect to {where} (not followed; fix the webhook URL)"
        return EndpointRejected(self.subscriber, event_id, reason, status_code=status)

    async def aclose(self) -> None:
        await self._client.aclose()


async def _snippet(response: httpx.Response) -> str:
    chunks = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= _ERROR_SNIPPET_BYTES:
            break
    text = b"".join(chunks)[:_ERROR_SNIPPET_BYTES].decode("utf-8", errors="replace")
    return " ".join(text.split())


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

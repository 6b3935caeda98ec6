"""The subscribers' side of webhooks: a receiver on 127.0.0.1 that checks every signature.

It plays the webhook endpoints of the demo's webhook subscribers (Dinsos's SIP Bansos,
Dinkes's SIMPUS): one path per subscriber, ``/<subscriber name>``. Each POST is verified
with the reference Standard Webhooks library under that subscriber's signing secrets, as a
real endpoint must, and answered 204 when it verifies and 401 when it does not. What
arrived is kept (the latest few, and counts) for the progress display and the story.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

__all__ = ["ReceivedWebhook", "WebhookReceiver"]

_MAX_HEAD_BYTES = 64 * 1024
_MAX_BODY_BYTES = 8 * 1024 * 1024
_KEPT = 50
_REASONS = {204: "No Content", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            411: "Length Required", 413: "Content Too Large"}  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceivedWebhook:
    """One POST the receiver got.

    Attributes:
        subscriber: whose endpoint it came to (the path).
        webhook_id: the ``webhook-id`` header: the event's id.
        verified: whether a signature checked out under the subscriber's secrets.
        event_type: the CloudEvent's ``type``; ``data`` its data (None when unreadable).
        received_at: when it arrived (``time.monotonic()``), and ``at`` the wall clock.
    """

    subscriber: str
    webhook_id: str | None
    verified: bool
    event_type: str | None
    data: Mapping[str, Any] | None
    received_at: float
    at: dt.datetime


Listener = Callable[[ReceivedWebhook], None]


class WebhookReceiver:
    """Webhook endpoints for several subscribers on one local port.

    Args:
        secrets: subscriber name -> its valid signing secrets (``whsec_...``).
        port: the port to listen on; 0 (or a taken port) picks a free one.
    """

    def __init__(self, secrets: Mapping[str, Sequence[str]], *, port: int = 0) -> None:
        self._hooks = {name: [Webhook(s) for s in values] for name, values in secrets.items()}
        self._preferred = port
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.StreamWriter, asyncio.Task[Any]] = {}
        self._listeners: list[Listener] = []
        self.port = 0
        self.received: deque[ReceivedWebhook] = deque(maxlen=_KEPT)
        self.counts: Counter[str] = Counter()
        """Verified deliveries per subscriber."""
        self.rejected: Counter[str] = Counter()
        """Deliveries per subscriber whose signature did not verify."""

    def url(self, subscriber: str) -> str:
        return f"http://127.0.0.1:{self.port}/{subscriber}"

    def set_secrets(self, name: str, secrets: Sequence[str]) -> None:
        """Verify ``name``'s deliveries with these secrets from now on."""
        self._hooks[name] = [Webhook(s) for s in secrets]

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unlisten(self, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    async def start(self) -> None:
        """Listen on 127.0.0.1 (only this machine's deliverer can reach it)."""
        try:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", self._preferred)
        except OSError:
            if not self._preferred:
                raise
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and close the deliverer's keep-alive connections."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        connections = dict(self._connections)
        for writer in connections:
            writer.close()
        if connections:
            # Closed sockets end their handlers' reads at once; give them a moment.
            await asyncio.wait(connections.values(), timeout=2)
        if server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2)

    # -- HTTP ---------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections[writer] = task
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                path, headers, body = request
                status = self._handle(path, headers, body) if body is not None else 411
                reason = _REASONS.get(status, "Status")
                writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\n\r\n".encode())
                await writer.drain()
                if body is None:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        finally:
            self._connections.pop(writer, None)
            writer.close()

    def _handle(self, path: str, headers: Mapping[str, str], body: bytes) -> int:
        name = path.strip("/").split("?", 1)[0]
        hooks = self._hooks.get(name)
        if hooks is None:
            return 404
        verified = any(_verifies(hook, body, headers) for hook in hooks)
        try:
            payload = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            payload = None
        document = payload if isinstance(payload, dict) else {}
        data = document.get("data")
        received = ReceivedWebhook(
            subscriber=name,
            webhook_id=headers.get("webhook-id"),
            verified=verified,
            event_type=document.get("type"),
            data=data if isinstance(data, dict) else None,
            received_at=time.monotonic(),
            at=dt.datetime.now(dt.UTC),
        )
        (self.counts if verified else self.rejected)[name] += 1
        self.received.append(received)
        for listener in list(self._listeners):
            listener(received)
        return 204 if verified else 401


def _verifies(hook: Webhook, body: bytes, headers: Mapping[str, str]) -> bool:
    try:
        hook.verify(body, dict(headers), json_parse=False)
    except (WebhookVerificationError, ValueError):
        return False
    return True


async def _read_request(
    reader: asyncio.StreamReader,
) -> tuple[str, dict[str, str], bytes | None] | None:
    """The next request on a keep-alive connection: path, headers (lowercase) and body.

    The body is None when its length is not given (the deliverer always gives it).
    """
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    if len(head) > _MAX_HEAD_BYTES:
        raise ConnectionError("request head too large")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    path = parts[1] if len(parts) >= 2 else "/"
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length")
    if length is None or not length.isdigit() or int(length) > _MAX_BODY_BYTES:
        return path, headers, None
    body = await reader.readexactly(int(length)) if int(length) else b""
    return path, headers, body

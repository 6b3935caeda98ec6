"""Test helpers for webhooks: a receiving endpoint, and delivery records as routing writes them.

For Lintas's own tests and benchmarks, and for subscriber teams who want to see what their
endpoint will get::

    async with WebhookReceiver(secrets=[secret]) as receiver:    # http://127.0.0.1:<port>/hook
        ...                                                     # point a subscriber at receiver.url
        await receiver.wait_for_ids(expected, timeout=60)
        assert receiver.duplicates() == {}

The receiver verifies each request's Standard Webhooks signature with the reference
``standardwebhooks`` library and answers what ``respond`` says: a status code, or ``None`` to
never answer (the connection is held open until the receiver stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import orjson
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from lintas.schemas import EventType, encode, parse_schema
from lintas.schemas.registry import SchemaRegistryClient

from .._records import CE_ID, CE_SOURCE, CE_SUBJECT, CE_TIME, CE_TYPE
from .signing import WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP

__all__ = [
    "Received",
    "WebhookReceiver",
    "delivery_headers",
    "delivery_value",
    "projected_schema",
    "register_projection",
]

_REASONS = {200: "OK", 204: "No Content", 401: "Unauthorized", 429: "Too Many Requests"}
_MAX_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Received:
    """One request the receiver got.

    Attributes:
        webhook_id, timestamp, signature: the Standard Webhooks headers.
        body: the raw body; ``payload`` is it parsed.
        verified: whether a signature checked out (None when the receiver has no secrets).
        attempt: how many requests with this webhook-id came before, plus one.
        status: what the receiver answered (None: it never answered).
    """

    webhook_id: str | None
    timestamp: str | None
    signature: str | None
    headers: Mapping[str, str]
    body: bytes
    payload: Any
    verified: bool | None
    attempt: int
    status: int | None


Responder = Callable[[Received], int | None]


class WebhookReceiver:
    """An HTTP/1.1 endpoint on 127.0.0.1 that records what it receives.

    Args:
        secrets: signing secrets to verify with (any one may match); empty: no verification.
        respond: the status to answer for a request (``None``: never answer); the default
            accepts everything with 204. A request whose signature does not verify gets 401
            whatever ``respond`` says.
        path: the URL path.
    """

    def __init__(
        self,
        *,
        secrets: Sequence[str] = (),
        respond: Responder | None = None,
        path: str = "/hook",
    ) -> None:
        self._hooks = [Webhook(s) for s in secrets]
        self.respond: Responder = respond or (lambda request: 204)
        self.path = path
        self.requests: list[Received] = []
        self.accepted: Counter[str] = Counter()
        """Per webhook-id, how many times it was answered with a 2xx."""
        self._seen: Counter[str] = Counter()
        self._server: asyncio.Server | None = None
        self._hanging: set[asyncio.StreamWriter] = set()
        self._changed = asyncio.Event()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def set_secrets(self, secrets: Sequence[str]) -> None:
        """Verify with these secrets from now on (a receiver following a rotation)."""
        self._hooks = [Webhook(s) for s in secrets]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        server, self._server = self._server, None
        for writer in list(self._hanging):
            writer.close()
        if server is not None:
            server.close()
            # Connections in keep-alive would make wait_closed() wait for the client.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- what arrived -------------------------------------------------------------------

    def accepted_ids(self) -> set[str]:
        return set(self.accepted)

    def duplicates(self) -> dict[str, int]:
        """Webhook-ids accepted more than once, with their counts."""
        return {k: v for k, v in self.accepted.items() if v > 1}

    def attempts(self, webhook_id: str) -> int:
        """How many requests carried ``webhook_id``."""
        return self._seen[webhook_id]

    async def wait_for_ids(self, ids: Iterable[str], *, timeout: float) -> None:
        """Wait until every id in ``ids`` was accepted.

        Raises:
            TimeoutError: naming how many are missing.
        """
        wanted = set(ids)
        await self.wait_until(lambda: wanted <= self.accepted.keys(), timeout=timeout)

    async def wait_until(self, predicate: Callable[[], bool], *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"receiver: condition not met within {timeout:g} s "
                    f"({len(self.accepted)} ids accepted, {len(self.requests)} requests)"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))

    # -- HTTP -----------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                headers, body = request
                received = self._received(headers, body)
                if received.status is None:
                    # Never answer: hold the connection until the client gives up or we stop.
                    self._hanging.add(writer)
                    await reader.read()
                    return
                reason = _REASONS.get(received.status, "Status")
                writer.write(
                    f"HTTP/1.1 {received.status} {reason}\r\nContent-Length: 0\r\n\r\n".encode()
                )
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._hanging.discard(writer)
            writer.close()

    def _received(self, headers: dict[str, str], body: bytes) -> Received:
        webhook_id = headers.get(WEBHOOK_ID)
        verified: bool | None = None
        if self._hooks:
            verified = any(_verifies(hook, body, headers) for hook in self._hooks)
        try:
            payload = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            payload = None
        key = webhook_id or ""
        self._seen[key] += 1
        draft = Received(
            webhook_id=webhook_id,
            timestamp=headers.get(WEBHOOK_TIMESTAMP),
            signature=headers.get(WEBHOOK_SIGNATURE),
            headers=headers,
            body=body,
            payload=payload,
            verified=verified,
            attempt=self._seen[key],
            status=None,
        )
        status = 401 if verified is False else self.respond(draft)
        received = Received(**{**_fields(draft), "status": status})
        self.requests.append(received)
        if status is not None and 200 <= status < 300 and webhook_id:
            self.accepted[webhook_id] += 1
        self._changed.set()
        return received


def _fields(r: Received) -> dict[str, Any]:
    return {name: getattr(r, name) for name in Received.__slots__}


def _verifies(hook: Webhook, body: bytes, headers: dict[str, str]) -> bool:
    try:
        hook.verify(body, headers, json_parse=False)
    except (WebhookVerificationError, ValueError):
        return False
    return True


async def _read_request(reader: asyncio.StreamReader) -> tuple[dict[str, str], bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError as exc:
        raise ConnectionError("request head too large") from exc
    if len(head) > _MAX_HEADER_BYTES:
        raise ConnectionError("request head too large")
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return headers, body


# -- delivery records as the routing stage writes them ---------------------------------------


def projected_schema(event_type: EventType, fields: Sequence[str]) -> dict[str, Any]:
    """The event type's schema with only ``fields`` (``["*"]``: all), as routing projects it."""
    schema = dict(event_type.schema)
    if list(fields) != ["*"]:
        keep = set(fields)
        schema["fields"] = [f for f in schema["fields"] if f["name"] in keep]
    return schema


async def register_projection(
    registry: SchemaRegistryClient,
    topic: str,
    event_type: EventType,
    fields: Sequence[str],
) -> tuple[int, dict[str, Any]]:
    """Register a projected schema under its TopicRecordNameStrategy subject.

    Returns:
        The schema id and the parsed schema, ready for :func:`lintas.schemas.encode`.
    """
    schema = projected_schema(event_type, fields)
    subject = f"{topic}-{event_type.full_name}"
    schema_id = await registry.register(subject, orjson.dumps(schema).decode())
    return schema_id, parse_schema(schema)


def delivery_headers(
    event_id: str,
    event_type: EventType,
    *,
    subject: str | None,
    source: str = "/opd/dukcapil/siak",
    time: dt.datetime | None = None,
) -> list[tuple[str, bytes]]:
    """CloudEvents headers (Kafka binary mode) of a routed event."""
    headers = [
        ("ce_specversion", b"1.0"),
        (CE_ID, event_id.encode()),
        (CE_SOURCE, source.encode()),
        (CE_TYPE, event_type.id.encode()),
        (CE_TIME, (time or dt.datetime.now(dt.UTC)).isoformat().encode()),
        ("content-type", b"application/avro"),
    ]
    if subject is not None:
        headers.append((CE_SUBJECT, subject.encode()))
    return headers


def delivery_value(schema_id: int, parsed: dict[str, Any], record: Mapping[str, Any]) -> bytes:
    """A record encoded with a projected schema (fields it does not have are dropped)."""
    names = {f["name"] for f in parsed["fields"]}
    return encode(schema_id, parsed, {k: v for k, v in record.items() if k in names})

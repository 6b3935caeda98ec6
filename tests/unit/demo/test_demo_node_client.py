"""The Node.js gateway client: its stdin/stdout protocol, retries and answers.

A small stand-in answers on 127.0.0.1 the way the gateway's documentation says it does
(401 for a key the gateway has not seen yet, 503 with Retry-After, 422, 202); the real
gateway is exercised by tests/integration/test_demo.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from lintas.demo import (
    DEMO_APPS,
    EventFactory,
    NodeUnavailable,
    OutcomeStatus,
    Population,
    SimEvent,
)
from lintas.demo.gateway_client import NodeGatewayPublisher, find_node

SICANTIK = next(a for a in DEMO_APPS if a.app_id == "sicantik")
KEY = "lk_0123456789ab_" + "k" * 43


class StandInGateway:
    """Answers POST /v1/events like the gateway would, and records every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.seen: Counter[str] = Counter()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()

    def answer(self, event: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        self.seen[event["id"]] += 1
        attempt = self.seen[event["id"]]
        if event["type"] == "dpmptsp.izin_dicabut.v1":
            return 422, {"code": "validation_failed", "detail": "1 problem"}, {}
        if event["id"] == "first" and attempt == 1:  # the key is not in the gateway's view yet
            return 401, {"code": "unauthenticated", "reason": "unknown key"}, {}
        if event["id"] == "busy" and attempt == 1:
            return 503, {"code": "unavailable", "detail": "spool full"}, {"Retry-After": "1"}
        status = "spooled" if event["id"] == "busy" else "sent"
        return 202, {"id": event["id"], "status": status}, {}

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                body = await reader.readexactly(int(headers["content-length"]))
                event = orjson.loads(body)
                self.requests.append((headers, event))
                status, doc, extra = self.answer(event)
                payload = orjson.dumps(doc)
                head_out = f"HTTP/1.1 {status} X\r\nContent-Length: {len(payload)}\r\n"
                head_out += "Content-Type: application/json\r\n"
                head_out += "".join(f"{k}: {v}\r\n" for k, v in extra.items())
                writer.write(head_out.encode() + b"\r\n" + payload)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _event(event_type: str, event_id: str) -> SimEvent:
    rng = random.Random(event_id)
    factory = EventFactory(Population(rng, today=dt.date.today()), rng)
    return SimEvent(event_type=event_type, record=factory.make(event_type), id=event_id)


async def test_events_go_out_as_cloudevents_with_the_apps_key(tmp_path: Path) -> None:
    gateway = StandInGateway()
    await gateway.start()
    client = NodeGatewayPublisher(
        f"http://127.0.0.1:{gateway.port}", {"sicantik": KEY}, log_path=tmp_path / "node.log"
    )
    await client.start()
    try:
        events = [
            _event("dpmptsp.izin_terbit.v1", "first"),
            _event("dpmptsp.izin_terbit.v1", "busy"),
            _event("dpmptsp.izin_dicabut.v1", "refused"),
        ]
        outcomes = await asyncio.wait_for(client.publish(SICANTIK, events), 60)
    finally:
        await client.stop()
        await gateway.stop()
    assert [(o.event_id, o.status) for o in outcomes] == [
        ("first", OutcomeStatus.SENT),  # after waiting for the key to reach the gateway
        ("busy", OutcomeStatus.SPOOLED),  # after the Retry-After
        ("refused", OutcomeStatus.REFUSED),
    ]
    assert "HTTP 422 validation_failed" in outcomes[2].detail
    assert gateway.seen == {"first": 2, "busy": 2, "refused": 1}
    for headers, event in gateway.requests:
        assert headers["authorization"] == f"Bearer {KEY}"
        assert headers["content-type"] == "application/cloudevents+json"
        assert event["source"] == "/opd/dpmptsp/sicantik"
        assert event["specversion"] == "1.0"
        assert isinstance(event["data"]["nomor_izin"], str)
    assert "gateway_client: node v" in (tmp_path / "node.log").read_text()


async def test_an_app_without_a_key_gets_a_failed_outcome(tmp_path: Path) -> None:
    gateway = StandInGateway()
    await gateway.start()
    client = NodeGatewayPublisher(
        f"http://127.0.0.1:{gateway.port}", {}, log_path=tmp_path / "node.log"
    )
    await client.start()
    try:
        [outcome] = await client.publish(SICANTIK, [_event("dpmptsp.izin_terbit.v1", "x")])
    finally:
        await client.stop()
        await gateway.stop()
    assert outcome.status is OutcomeStatus.FAILED
    assert "no API key for sicantik" in outcome.detail
    assert gateway.requests == []


def test_node_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    node, version = find_node()
    assert Path(node).exists() and version.startswith("v")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(NodeUnavailable, match="no `node` on PATH"):
        find_node()

"""The gateway under a broker outage, on a stack of its own (``lintas up``'s gateway process).

Clients keep sending while Kafka is stopped and started again. Every answer is 202 (sent or
spooled) or 503 with Retry-After, never another 5xx; afterwards every event id that got a
202 is in Kafka. Counted by event id, never timed.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from producer_helpers import read_topic

from lintas.directory import Directory
from lintas.endpoints import resolve_endpoints
from lintas.producers.gateway.openapi import example_json
from lintas.schemas import load_catalog

pytestmark = pytest.mark.asyncio(loop_scope="session")

KEMATIAN = load_catalog().get("dukcapil.kematian_dicatat.v1")
WAIT = 240  # seconds before a stage that makes no progress fails the test
BATCH = 20


@pytest.fixture
def own_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The private stack's addresses only (not the shared stack's), and short producer
    timeouts for its gateway, so an outage is noticed in seconds."""
    for name in list(os.environ):
        if name.startswith("LINTAS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LINTAS_PRODUCER__SEND_TIMEOUT_S", "3")
    monkeypatch.setenv("LINTAS_PRODUCER__START_TIMEOUT_S", "3")
    monkeypatch.setenv("LINTAS_PRODUCER__STOP_TIMEOUT_S", "3")
    yield


class Sender:
    """A client that sends batches in a loop and remembers what the gateway accepted."""

    def __init__(self, url: str, token: str) -> None:
        self.client = httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120
        )
        self.accepted: dict[str, str] = {}  # event id -> status
        self.answers: Counter[int] = Counter()
        self.unexpected: list[str] = []
        self.batches = 0

    async def send_batch(self) -> None:
        number = self.batches
        self.batches += 1
        data = example_json(KEMATIAN)
        events = [
            {
                "event_type": KEMATIAN.id,
                "data": {**data, "nomor_akta_kematian": f"3273-KM-{number:06d}-{i:04d}"},
            }
            for i in range(BATCH)
        ]
        key = {"Idempotency-Key": f"batch-{number}"}
        while True:  # a 503 is retried with the same key, as the docs tell clients to
            response = await self.client.post("/v1/events:batch", json=events, headers=key)
            self.answers[response.status_code] += 1
            if response.status_code == 202:
                for event in response.json()["events"]:
                    self.accepted[event["id"]] = event["status"]
                return
            if response.status_code == 503 and "retry-after" in response.headers:
                await asyncio.sleep(min(int(response.headers["retry-after"]), 2))
                continue
            self.unexpected.append(f"{response.status_code} {response.text[:500]}")
            return

    async def send_until(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.send_batch()


async def _wait(predicate: Any, what: str) -> None:
    for _ in range(WAIT * 10):
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {WAIT} s")


async def test_broker_outage_answers_202_or_503_and_loses_nothing(
    own_stack: None, private_stack: Any
) -> None:
    stack = private_stack
    state = await asyncio.to_thread(stack.up)
    gateway_url = state.components["gateway"].url
    assert gateway_url, "lintas up starts the gateway"
    _, status = await asyncio.to_thread(stack.status)  # what `lintas status --json` prints
    assert status["gateway_url"] == gateway_url
    assert status["components"]["gateway"]["healthy"]
    settings = stack.settings
    async with await Directory.open(settings) as directory:
        await directory.add_opd({"code": "dukcapil", "name": "Disdukcapil"})
        _, key = await directory.add_application(
            {"id": "siak", "name": "SIAK", "opd": "dukcapil", "method": "gateway",
             "produces": [KEMATIAN.id]}
        )  # fmt: skip
    assert key is not None
    sender = Sender(gateway_url, key.token)

    async def knows_key() -> bool:
        probe = await sender.client.post(f"/v1/events/{KEMATIAN.id}", json=example_json(KEMATIAN))
        if probe.status_code == 202:
            sender.accepted[probe.json()["id"]] = probe.json()["status"]
        return probe.status_code == 202

    await _wait(knows_key, "the gateway accepting the new application's key")
    for _ in range(5):
        await sender.send_batch()
    assert set(sender.accepted.values()) == {"sent"}

    # Kafka goes away while clients keep sending, and comes back.
    stop = asyncio.Event()
    sending = asyncio.create_task(sender.send_until(stop))
    await asyncio.to_thread(stack.down, only="kafka")
    before = sender.batches
    await _wait(_async(lambda: sender.batches >= before + 5), "five batches during the outage")
    await asyncio.to_thread(stack.up)
    after = sender.batches
    await _wait(_async(lambda: sender.batches >= after + 5), "five batches after the outage")
    stop.set()
    await asyncio.wait_for(sending, WAIT)

    async def drained() -> bool:
        ready = (await sender.client.get("/readyz")).json()
        return bool(ready["kafka"] == "connected" and ready["spooled"] == 0)

    await _wait(drained, "the gateway's spool draining")
    await sender.client.aclose()

    assert not sender.unexpected, sender.unexpected[:3]
    assert set(sender.answers) <= {202, 503}, sender.answers
    statuses = Counter(sender.accepted.values())
    assert statuses["spooled"] > 0, f"nothing was spooled during the outage: {statuses}"
    reads = await read_topic(resolve_endpoints(settings).kafka, KEMATIAN.topic)
    found = {r.event_id for r in reads}
    missing = set(sender.accepted) - found
    assert not missing, f"{len(missing)} accepted events are not in Kafka: {sorted(missing)[:5]}"
    print(
        f"{len(sender.accepted)} events accepted ({dict(statuses)}), "
        f"answers {dict(sender.answers)}, {len(reads)} records in Kafka"
    )


def _async(check: Any) -> Any:
    async def run() -> bool:
        return bool(check())

    return run

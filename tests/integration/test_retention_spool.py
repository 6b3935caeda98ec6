"""Spools hold personal data only until Kafka has it: once forwarded to the real broker,
by the restarted producer or by ``lintas spool flush``, no byte of it is left on disk.

The gateway spools through the same :class:`EventProducer` (``LINTAS_GATEWAY__SPOOL_NAME``),
so this is its guarantee too.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from producer_helpers import read_topic
from prometheus_client import CollectorRegistry

from lintas.kafka import KafkaConnection
from lintas.producers import DeliveryStatus, EventProducer, spool_status
from lintas.producers._admin import flush_spools
from lintas.schemas import example_event, load_catalog, model_for
from lintas.schemas.testing import InMemorySchemaResolver
from lintas.settings import ProducerSettings, Settings

KEMATIAN = load_catalog().get("dukcapil.kematian_dicatat.v1")
NAMA = "Sumarni Wulandari Binti Karta"
WAIT_S = 60


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Registry(InMemorySchemaResolver):
    url = "http://registry.test"


def _events(n: int) -> list[Any]:
    model = model_for(KEMATIAN)
    out = []
    for i in range(n):
        data = example_event(KEMATIAN)
        data["nomor_akta_kematian"] = f"3273-KM-10062025-{i:04d}"
        data["nama"] = NAMA
        out.append(model.model_validate(data))
    return out


def _on_disk(root: Path) -> bytes:
    """Every byte of every spool file (database, WAL, shared memory), locks aside."""
    return b"".join(
        p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.suffix != ".lock"
    )


async def _spool_offline(
    settings: Settings, registry: Registry, events: list[Any], topic: str
) -> list[str]:
    """Events sent while the broker cannot be reached: they go to the spool."""
    offline = KafkaConnection(
        bootstrap=f"127.0.0.1:{_closed_port()}", username="siak", password="not-used"
    )
    producer = EventProducer(
        app="siak", opd="dukcapil", settings=settings, connection=offline, registry=registry,
        metrics_registry=CollectorRegistry(), topic_of=lambda _: topic,
    )  # fmt: skip
    await asyncio.wait_for(producer.start(), WAIT_S)
    try:
        results = await producer.send_many(events)
    finally:
        await asyncio.wait_for(producer.stop(), WAIT_S)
    assert {r.status for r in results} == {DeliveryStatus.SPOOLED}
    return [r.event_id for r in results]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        producer=ProducerSettings(
            spool_dir=tmp_path / "spool", send_timeout_s=2, start_timeout_s=2, stop_timeout_s=5
        ),
    )


@pytest.fixture
async def registry() -> Registry:
    resolver = Registry()
    await resolver.register(KEMATIAN.subject, KEMATIAN.schema_str)
    return resolver


async def _wait_empty(settings: Settings) -> None:
    for _ in range(WAIT_S * 10):
        if all(i.records == 0 for i in spool_status(settings)):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the spool was not forwarded: {spool_status(settings)}")


async def test_a_restarted_producer_forwards_its_spool_and_leaves_nothing_behind(
    kafka_conn: KafkaConnection, topic_factory: Callable[..., Any], settings: Settings,
    registry: Registry,
) -> None:  # fmt: skip
    topic = await topic_factory("test.spool.retention.")
    events = _events(40)
    sent = await _spool_offline(settings, registry, events, topic)
    root = settings.producer.spool_dir
    assert root is not None
    assert NAMA.encode() in _on_disk(root), "the test must look where the data is"

    producer = EventProducer(
        app="siak", opd="dukcapil", settings=settings, connection=kafka_conn, registry=registry,
        metrics_registry=CollectorRegistry(), topic_of=lambda _: topic,
    )  # fmt: skip
    await asyncio.wait_for(producer.start(), WAIT_S)
    try:
        await _wait_empty(settings)
        assert NAMA.encode() not in _on_disk(root)  # forwarded while it still runs
    finally:
        await asyncio.wait_for(producer.stop(), WAIT_S)
    assert NAMA.encode() not in _on_disk(root)
    arrived = {r.event_id for r in await read_topic(kafka_conn, topic)}
    assert set(sent) <= arrived


async def test_lintas_spool_flush_forwards_a_dead_apps_spool_and_leaves_nothing_behind(
    kafka_conn: KafkaConnection, topic_factory: Callable[..., Any], settings: Settings,
    registry: Registry,
) -> None:  # fmt: skip
    topic = await topic_factory("test.spool.flush.")
    sent = await _spool_offline(settings, registry, _events(10), topic)
    root = settings.producer.spool_dir
    assert root is not None
    assert NAMA.encode() in _on_disk(root)
    # The app is gone; the operator forwards what it left (`lintas spool flush`).
    results = await flush_spools(settings, kafka_conn)
    assert sum(r.forwarded for r in results) == len(sent)
    assert all(i.records == 0 for i in spool_status(settings))
    assert NAMA.encode() not in _on_disk(root)
    assert set(sent) <= {r.event_id for r in await read_topic(kafka_conn, topic)}

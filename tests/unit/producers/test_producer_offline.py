"""The producer with no broker at all: it starts, spools, bounds every wait, and restarts.

The "broker" is a closed port on this machine, so no test here needs Kafka; what happens
once the broker is back is covered by tests/integration/test_producer_*.py.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from lintas.kafka import KafkaConnection
from lintas.producers import (
    DeliveryStatus,
    EventProducer,
    FlushTimeout,
    Producer,
    ProducerClosed,
    SchemaUnavailable,
    SpoolFull,
    ValidationFailed,
    spool_status,
)
from lintas.schemas import example_event, load_catalog, model_for
from lintas.schemas.registry.exceptions import RegistryUnavailable
from lintas.schemas.testing import InMemorySchemaResolver
from lintas.settings import ProducerSettings, Settings

KEMATIAN = load_catalog().get("dukcapil.kematian_dicatat.v1")
KELAHIRAN = load_catalog().get("dukcapil.kelahiran_dicatat.v1")
# Generous: a hang fails the test, while timings are never asserted.
HANG = 60


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


REGISTRY_URL = "http://registry.test"


class Registry(InMemorySchemaResolver):
    """The registry, in memory; remembered schema ids are scoped by its ``url``."""

    url = REGISTRY_URL


class DownRegistry:
    """The same registry, unreachable."""

    url = REGISTRY_URL

    async def get_schema(self, schema_id: int) -> Any:
        raise RegistryUnavailable(self.url, "connection refused")

    async def register(self, subject: str, schema: str) -> int:
        raise RegistryUnavailable(self.url, "connection refused")

    async def lookup(self, subject: str, schema: str) -> int:
        raise RegistryUnavailable(self.url, "connection refused")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        producer=ProducerSettings(
            spool_dir=tmp_path / "spool",
            spool_max_bytes=1024 * 1024,
            send_timeout_s=2,
            start_timeout_s=2,
            stop_timeout_s=2,
        ),
    )


@pytest.fixture
async def registry() -> Registry:
    resolver = Registry()
    for event_type in load_catalog():
        await resolver.register(event_type.subject, event_type.schema_str)
    return resolver


@pytest.fixture
def make(settings: Settings, registry: Registry) -> Callable[..., EventProducer]:
    conn = KafkaConnection(
        bootstrap=f"127.0.0.1:{_closed_port()}", username="siak", password="not-used"
    )

    def factory(**kwargs: Any) -> EventProducer:
        options: dict[str, Any] = {
            "app": "siak",
            "opd": "dukcapil",
            "settings": settings,
            "connection": conn,
            "registry": registry,
            "metrics_registry": CollectorRegistry(),
        }
        options.update(kwargs)
        return EventProducer(**options)

    return factory


@pytest.fixture
async def producer(make: Callable[..., EventProducer]) -> AsyncIterator[EventProducer]:
    p = make()
    await asyncio.wait_for(p.start(), HANG)
    try:
        yield p
    finally:
        await asyncio.wait_for(p.stop(), HANG)


def _kematian(i: int = 1) -> Any:
    data = example_event(KEMATIAN)
    data["nomor_akta_kematian"] = f"3273-KM-10062025-{i:04d}"
    return model_for(KEMATIAN).model_validate(data)


async def test_starts_offline_and_spools(producer: EventProducer) -> None:
    assert producer.spooling
    delivery = await asyncio.wait_for(producer.send(_kematian()), HANG)
    assert delivery.status == "spooled" and delivery.status is DeliveryStatus.SPOOLED
    assert not delivery.sent
    assert (delivery.partition, delivery.offset) == (None, None)
    assert delivery.topic == KEMATIAN.topic
    many = await producer.send_many([_kematian(i) for i in range(2, 12)])
    assert {d.status for d in many} == {DeliveryStatus.SPOOLED}
    assert len({d.event_id for d in many}) == 10
    assert producer.spooled == 11
    (info,) = spool_status(producer.settings)
    assert (info.name, info.records, info.topics) == ("dukcapil.siak", 11, {KEMATIAN.topic: 11})


async def test_invalid_events_are_refused_before_anything_is_spooled(
    producer: EventProducer,
) -> None:
    bad = {**example_event(KEMATIAN), "kode_wilayah": "32-73"}
    with pytest.raises(ValidationFailed) as caught:
        await producer.send(bad, event_type=KEMATIAN.id)
    assert caught.value.errors[0]["field"] == "kode_wilayah"
    assert caught.value.errors[0]["rule"] == "string_pattern_mismatch"
    with pytest.raises(ValidationFailed) as caught:
        await producer.send(example_event(KEMATIAN))  # a dict without its event type
    assert caught.value.errors[0]["field"] == "event_type"
    assert producer.spooled == 0


async def test_a_full_spool_raises_with_the_numbers_and_keeps_what_it_has(
    producer: EventProducer,
) -> None:
    accepted = 0
    with pytest.raises(SpoolFull) as caught:
        for i in range(100):
            await producer.send_many([_kematian(j) for j in range(i * 50, i * 50 + 50)])
            accepted += 50
    error = caught.value
    assert 0 < accepted < 5000
    assert error.records == accepted == producer.spooled
    assert error.limit_bytes == 1024 * 1024
    assert error.used_bytes + error.needed_bytes > error.limit_bytes
    assert error.retriable


async def test_restart_finds_the_spool_and_encodes_without_the_registry(
    make: Callable[..., EventProducer],
) -> None:
    first = make()
    await first.start()
    sent = await first.send_many([_kematian(i) for i in range(5)])
    await asyncio.wait_for(first.stop(), HANG)

    # The app restarts while the network (registry included) is still down.
    second = make(registry=DownRegistry())
    await asyncio.wait_for(second.start(), HANG)
    try:
        assert second.spooled == 5
        # The registry URL scopes remembered ids: the same URL finds them.
        again = await second.send(_kematian(9))
        assert again.status == "spooled" and second.spooled == 6
        kelahiran = model_for(KELAHIRAN).model_validate(example_event(KELAHIRAN))
        with pytest.raises(SchemaUnavailable) as caught:
            await second.send(kelahiran)  # never sent before: its id is not known
        assert caught.value.subject == KELAHIRAN.subject
        assert "connection refused" in caught.value.message
        waiting = await second._running().spool.peek(100)
        assert [e.record.event_id for e in waiting] == [d.event_id for d in [*sent, again]]
    finally:
        await asyncio.wait_for(second.stop(), HANG)


async def test_flush_and_stop_are_bounded_with_the_broker_away(producer: EventProducer) -> None:
    await producer.send_many([_kematian(i) for i in range(3)])
    with pytest.raises(FlushTimeout) as caught:
        await asyncio.wait_for(producer.flush(1), HANG)
    assert (caught.value.spooled, caught.value.in_flight) == (3, 0)
    await asyncio.wait_for(producer.stop(), HANG)
    with pytest.raises(ProducerClosed):
        await producer.send(_kematian())


async def test_lifecycle_errors(make: Callable[..., EventProducer]) -> None:
    producer = make()
    with pytest.raises(ProducerClosed) as caught:
        await producer.send(_kematian())
    assert caught.value.state == "new"
    async with producer:
        with pytest.raises(ProducerClosed):
            await producer.start()
    await producer.stop()  # idempotent
    with pytest.raises(ValueError, match="acks"):
        make(kafka_options={"acks": 1})
    with pytest.raises(ValueError, match="lowercase"):
        make(app="SIAK Dukcapil")


async def test_processes_of_one_app_get_their_own_slots(
    make: Callable[..., EventProducer],
) -> None:
    async with make() as a, make() as b:
        assert a.spool_path != b.spool_path
        assert {a.spool_path.name, b.spool_path.name} == {"slot-0.db", "slot-1.db"}


async def test_metrics_count_what_happened(make: Callable[..., EventProducer]) -> None:
    metrics = CollectorRegistry()
    async with make(metrics_registry=metrics) as producer:
        await producer.send_many([_kematian(i) for i in range(4)])
        with pytest.raises(ValidationFailed):
            await producer.send({"nik": "1"}, event_type=KEMATIAN.id)

        def value(name: str, **labels: str) -> float | None:
            return metrics.get_sample_value(name, {"producer": "dukcapil.siak", **labels})

        assert value("lintas_producer_spooled_total") == 4
        assert value("lintas_producer_failed_total", reason="validation") == 1
        assert value("lintas_producer_spool_records") == 4
        assert (value("lintas_producer_spool_bytes") or 0) > 4 * 100
        assert value("lintas_producer_send_seconds_count") == 1
        assert value("lintas_producer_in_flight") == 0


def test_the_blocking_producer_works_offline_too(settings: Settings, registry: Any) -> None:
    conn = KafkaConnection(bootstrap=f"127.0.0.1:{_closed_port()}", username="u", password="p")
    with Producer(
        app="sikda",
        opd="dinkes",
        settings=settings,
        connection=conn,
        registry=registry,
        metrics_registry=CollectorRegistry(),
    ) as producer:
        kunjungan = load_catalog().get("dinkes.kunjungan_pasien.v1")
        delivery = producer.send(example_event(kunjungan), event_type=kunjungan.id)
        assert delivery.status == "spooled"
        assert producer.send_many([]) == []
        assert producer.spooling and producer.spooled == 1
        with pytest.raises(FlushTimeout):
            producer.flush(0.5)
    with pytest.raises(ProducerClosed):
        producer.send(example_event(kunjungan), event_type=kunjungan.id)

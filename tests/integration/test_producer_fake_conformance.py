"""One test class, run against ``lintas.producers.testing`` and against the real broker.

The fake producer is a product for OPD developers' unit tests; it is only worth something
while it behaves as the real one does. So every test here runs twice (the ``target``
fixture): once with :class:`~lintas.producers.testing.FakeEventProducer`, once with
:class:`~lintas.producers.EventProducer` on the real broker and registry, under an
application principal whose ACLs let it write its own OPD's topics only. Both must give the
same deliveries (status, partition, offset), the same records (key, headers, Avro value
and schema id), and the same errors, with the same fields.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiokafka import TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import CollectorRegistry
from security_helpers import Tenant, forget_principals

from lintas.directory.models import Application
from lintas.kafka import KafkaConnection, create_consumer
from lintas.producers import (
    DeliveryStatus,
    Event,
    EventProducer,
    NotAuthorized,
    Producer,
    ProducerClosed,
    ValidationFailed,
)
from lintas.producers.testing import FakeEventProducer, FakeProducer, PublishedEvent
from lintas.schemas import EventModel, EventType, build_nik, example_event, load_catalog, model_for
from lintas.schemas.registry import SchemaRegistryClient
from lintas.security import SecurityContext, provision
from lintas.settings import ProducerSettings, SecuritySettings, Settings

pytestmark = pytest.mark.asyncio(loop_scope="session")

KEMATIAN = load_catalog().get("dukcapil.kematian_dicatat.v1")
IZIN = load_catalog().get("dpmptsp.izin_terbit.v1")
PARTITIONS = 3
ENVELOPE = ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject"]


@dataclass
class Target:
    """Where the test class's producers publish: the fake, or the real broker.

    Attributes:
        kind: ``fake`` or ``kafka``.
        topic: where kematian events go.
        denied: where izin events go; the principal may not write it.
        principal: who the refusals must name.
        make, make_sync: a producer (async, blocking) routed to those topics.
        read: every record of ``topic``, by partition and offset.
        schema_id: the id the producer's registry holds for an event type's subject.
    """

    kind: str
    topic: str
    denied: str
    principal: str
    make: Callable[[], EventProducer]
    make_sync: Callable[[], Producer]
    read: Callable[[], Awaitable[list[PublishedEvent]]]
    schema_id: Callable[[EventType], Awaitable[int]]
    fakes: list[Any] = field(default_factory=list)


def _settings(tmp_path: Path) -> Settings:
    producer = ProducerSettings(spool_dir=tmp_path / "spool", send_timeout_s=10, stop_timeout_s=5)
    return Settings(data_dir=tmp_path, producer=producer)


def _options(target_topics: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    return {
        "app": "siak",
        "opd": "dukcapil",
        "settings": _settings(tmp_path),
        "metrics_registry": CollectorRegistry(),
        "topic_of": lambda et: target_topics[et.id],
    }


async def _fake_target(tmp_path: Path) -> Target:
    topics = {KEMATIAN.id: "opd.dukcapil.kematian_dicatat.v1", IZIN.id: "opd.dpmptsp.x.v1"}
    principal = "User:app-siak"
    fakes: list[FakeEventProducer] = []

    def make() -> EventProducer:
        fake = FakeEventProducer(
            **_options(topics, tmp_path), principal=principal, denied_topics=[topics[IZIN.id]]
        )
        fakes.append(fake)
        return fake

    def make_sync() -> Producer:
        fake = FakeProducer(
            **_options(topics, tmp_path), principal=principal, denied_topics=[topics[IZIN.id]]
        )
        fakes.append(fake)
        return fake

    async def read() -> list[PublishedEvent]:
        published = [p for f in fakes for p in f.published if p.topic == topics[KEMATIAN.id]]
        return sorted(published, key=lambda p: (p.partition, p.offset))

    async def schema_id(event_type: EventType) -> int:
        registry = next(f for f in fakes if isinstance(f, FakeEventProducer)).schema_registry
        return await registry.lookup(event_type.subject, event_type.schema_str)

    return Target(
        kind="fake",
        topic=topics[KEMATIAN.id],
        denied=topics[IZIN.id],
        principal=principal,
        make=make,
        make_sync=make_sync,
        read=read,
        schema_id=schema_id,
    )


async def _read_topic(conn: KafkaConnection, topic: str) -> list[PublishedEvent]:
    consumer = create_consumer(conn, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[PublishedEvent] = []
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            batch = await consumer.getmany(*tps, timeout_ms=10_000)
            assert batch, f"reading {topic} stalled"
            out += [PublishedEvent.from_kafka(r) for records in batch.values() for r in records]
        return sorted(out, key=lambda p: (p.partition, p.offset))
    finally:
        await consumer.stop()


async def _kafka_target(
    tmp_path: Path,
    admin: KafkaConnection,
    registry_url: str,
    topic_factory: Callable[..., Any],
    tenant: Tenant,
) -> Target:
    settings = Settings(
        data_dir=tmp_path, security=SecuritySettings(principal_prefix=tenant.prefix)
    )
    app = Application.model_validate(
        {"id": f"siak-{tenant.tag}", "name": "SIAK", "opd": tenant.dukcapil, "method": "sdk"}
    )
    credential = await asyncio.to_thread(
        provision, SecurityContext.from_settings(settings), admin, app
    )
    conn = credential.connection(admin)
    topics = {
        KEMATIAN.id: await topic_factory(f"opd.{tenant.dukcapil}.kematian.", partitions=PARTITIONS),
        IZIN.id: await topic_factory(f"opd.{tenant.dinkes}.izin.", partitions=PARTITIONS),
    }

    def make() -> EventProducer:
        return EventProducer(**_options(topics, tmp_path), connection=conn, registry=registry_url)

    def make_sync() -> Producer:
        return Producer(**_options(topics, tmp_path), connection=conn, registry=registry_url)

    async def schema_id(event_type: EventType) -> int:
        async with SchemaRegistryClient(registry_url) as registry:
            return await registry.lookup(event_type.subject, event_type.schema_str)

    return Target(
        kind="kafka",
        topic=topics[KEMATIAN.id],
        denied=topics[IZIN.id],
        principal=credential.principal,
        make=make,
        make_sync=make_sync,
        read=lambda: _read_topic(admin, topics[KEMATIAN.id]),
        schema_id=schema_id,
    )


@pytest_asyncio.fixture(loop_scope="session", params=["fake", "kafka"])
async def target(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    kafka_conn: KafkaConnection,
    registry_url: str,
    topic_factory: Callable[..., Any],
) -> AsyncIterator[Target]:
    if request.param == "fake":
        yield await _fake_target(tmp_path)
        return
    tenant = Tenant()
    try:
        yield await _kafka_target(tmp_path, kafka_conn, registry_url, topic_factory, tenant)
    finally:
        forget_principals(kafka_conn, tenant.names)


def kematian(citizen: int, serial: int = 0) -> EventModel:
    nik = build_nik(
        "32.73.01", dt.date(1940, 1, 1) + dt.timedelta(days=citizen), perempuan=False, nomor_urut=7
    )
    record = {
        **example_event(KEMATIAN),
        "nik": nik,
        "nomor_akta_kematian": f"3273-KM-10062025-{serial:04d}",
    }
    return model_for(KEMATIAN).model_validate(record)


def partition_of(key: bytes) -> int:
    """Where Kafka's default partitioner puts a key: aiokafka's own, as the oracle."""
    every = list(range(PARTITIONS))
    return int(DefaultPartitioner()(key, every, every))


class TestPublishing:
    """What an application sees of a producer, fake or real."""

    async def test_a_sent_event_is_acknowledged_where_it_is_and_written_as_the_sdk_writes_it(
        self, target: Target
    ) -> None:
        event = kematian(0)
        async with target.make() as producer:
            delivery = await producer.send(event)
        assert delivery.status is DeliveryStatus.SENT
        assert delivery.topic == target.topic
        key = event.nik.encode()  # type: ignore[attr-defined]
        assert (delivery.partition, delivery.offset) == (partition_of(key), 0)

        [published] = await target.read()
        assert (published.partition, published.offset) == (delivery.partition, delivery.offset)
        assert published.event_id == delivery.event_id
        assert published.key == key
        assert published.event == event
        assert published.schema_id == await target.schema_id(KEMATIAN)
        assert [name for name, _ in published.headers] == [*ENVELOPE, "content-type"]
        assert published.header("ce_source") == "/opd/dukcapil/siak"
        assert published.header("ce_type") == KEMATIAN.id
        assert published.header("ce_subject") == event.nik  # type: ignore[attr-defined]
        assert published.header("content-type") == "application/avro"

    async def test_send_many_keeps_each_citizens_order_on_kafkas_partitions(
        self, target: Target
    ) -> None:
        events = [kematian(i % 4, serial=i) for i in range(24)]
        async with target.make() as producer:
            deliveries = await producer.send_many(events)
        assert [d.status for d in deliveries] == [DeliveryStatus.SENT] * len(events)

        published = await target.read()
        assert sorted(p.event_id for p in published) == sorted(d.event_id for d in deliveries)
        by_id = {p.event_id: p for p in published}
        for delivery, event in zip(deliveries, events, strict=True):
            placed = by_id[delivery.event_id]
            assert (placed.partition, placed.offset) == (delivery.partition, delivery.offset)
            assert placed.partition == partition_of(placed.key)
            assert placed.event == event
        # Per partition, offsets from 0 without gaps, in the order the events were handed over.
        for partition in {p.partition for p in published}:
            offsets = [d.offset for d in deliveries if d.partition == partition]
            assert offsets == list(range(len(offsets)))

    async def test_dicts_and_envelope_overrides(self, target: Target) -> None:
        record = {**example_event(KEMATIAN), "nik": kematian(1).nik}  # type: ignore[attr-defined]
        happened = dt.datetime(2025, 6, 10, 3, 5, 0, 123000, tzinfo=dt.UTC)
        async with target.make() as producer:
            delivery = await producer.send(
                record,
                event_type=KEMATIAN.id,
                event_id="KM-2025-0007",
                time=happened,
                subject="akta/3273-KM-10062025-0007",
                source="/opd/dukcapil/siak-v2",
                headers={"traceparent": b"00-abc-def-01"},
            )
        assert delivery.event_id == "KM-2025-0007"
        [published] = await target.read()
        assert published.event_id == "KM-2025-0007"
        assert published.key == record["nik"].encode()
        assert published.header("ce_time") == "2025-06-10T03:05:00.123Z"
        assert published.header("ce_subject") == "akta/3273-KM-10062025-0007"
        assert published.header("ce_source") == "/opd/dukcapil/siak-v2"
        assert published.headers[-1] == ("traceparent", b"00-abc-def-01")
        assert published.record == model_for(KEMATIAN).model_validate(record).model_dump()

    async def test_one_invalid_event_fails_the_call_and_nothing_is_published(
        self, target: Target
    ) -> None:
        bad = {**example_event(KEMATIAN), "nik": "12345"}
        async with target.make() as producer:
            with pytest.raises(ValidationFailed) as failed:
                await producer.send_many([kematian(0), Event(data=bad, event_type=KEMATIAN.id)])
            # The error names the event type, the event and the field with its rule.
            assert (failed.value.event_type, failed.value.index) == (KEMATIAN.id, 1)
            assert [e["field"] for e in failed.value.errors] == ["nik"]
            with pytest.raises(ValidationFailed):
                await producer.send({"nik": "3273"}, event_type="dukcapil.tidak_ada.v1")
        assert await target.read() == []

    async def test_a_refused_topic_names_topic_and_principal_and_is_not_spooled(
        self, target: Target
    ) -> None:
        izin = model_for(IZIN).model_validate(example_event(IZIN))
        async with target.make() as producer:
            with pytest.raises(NotAuthorized) as refused:
                await producer.send(izin)
            assert producer.spooled == 0
            # The producer goes on with what it may send.
            assert (await producer.send(kematian(2))).sent
        assert (refused.value.topic, refused.value.principal) == (target.denied, target.principal)
        assert refused.value.deliveries == ()
        assert len(await target.read()) == 1

    async def test_used_before_start_or_after_stop(self, target: Target) -> None:
        producer = target.make()
        with pytest.raises(ProducerClosed):
            await producer.send(kematian(0))
        async with producer:
            pass
        with pytest.raises(ProducerClosed):
            await producer.send(kematian(0))
        assert await target.read() == []

    async def test_the_blocking_producer_publishes_the_same(self, target: Target) -> None:
        event = kematian(3)
        # The blocking producer runs its own loop in a thread; blocking calls go off ours.
        producer = await asyncio.to_thread(target.make_sync)
        try:
            delivery = await asyncio.to_thread(producer.send, event)
        finally:
            await asyncio.to_thread(producer.close)
        assert delivery.sent
        [published] = await target.read()
        assert (published.event_id, published.event) == (delivery.event_id, event)
        assert published.partition == partition_of(published.key)

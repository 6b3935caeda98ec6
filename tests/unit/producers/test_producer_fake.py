"""``lintas.producers.testing`` on its own: what only the fake can simulate cheaply.

Everything the fake shares with the real producer (deliveries, records, errors) is checked
against the real broker by ``tests/integration/test_producer_fake_conformance.py``; here are
the faults a unit test of an OPD application needs (spooling, a full spool, a refused
topic), the in-memory registry, metrics and the blocking face.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

import lintas.producers.testing as testing
from lintas.producers import (
    DeliveryStatus,
    FlushTimeout,
    NotAuthorized,
    SchemaUnavailable,
    SpoolFull,
)
from lintas.producers.testing import FakeEventProducer, FakeProducer
from lintas.schemas import EventModel, build_nik, example_event, load_catalog, model_for
from lintas.schemas.testing import InMemorySchemaResolver
from lintas.settings import ProducerSettings, Settings

KEMATIAN = load_catalog().get("dukcapil.kematian_dicatat.v1")
TOPIC = KEMATIAN.topic


def _kematian(citizen: int, serial: int = 0) -> EventModel:
    import datetime as dt

    nik = build_nik(
        "32.73.01", dt.date(1950, 1, 1) + dt.timedelta(days=citizen), perempuan=True, nomor_urut=1
    )
    record = {
        **example_event(KEMATIAN),
        "nik": nik,
        "nomor_akta_kematian": f"3273-KM-10062025-{serial:04d}",
    }
    return model_for(KEMATIAN).model_validate(record)


def _fake(tmp_path: Path, **kwargs: object) -> FakeEventProducer:
    options: dict[str, object] = {
        "app": "siak",
        "opd": "dukcapil",
        "settings": Settings(data_dir=tmp_path),
    }
    return FakeEventProducer(**{**options, **kwargs})  # type: ignore[arg-type]


async def test_offline_events_are_spooled_then_published_in_order(tmp_path: Path) -> None:
    metrics = CollectorRegistry()
    events = [_kematian(i % 3, serial=i) for i in range(9)]
    async with _fake(tmp_path, metrics_registry=metrics, offline=True) as producer:
        deliveries = await producer.send_many(events[:6])
        assert {d.status for d in deliveries} == {DeliveryStatus.SPOOLED}
        assert (producer.spooling, producer.spooled, producer.published) == (True, 6, [])
        with pytest.raises(FlushTimeout) as waiting:
            await producer.flush(1)
        assert (waiting.value.spooled, waiting.value.in_flight) == (6, 0)

        producer.go_online()
        assert (producer.spooling, producer.spooled) == (False, 0)
        later = await producer.send_many(events[6:])
        assert {d.status for d in later} == {DeliveryStatus.SENT}
        await producer.flush(1)
    # Spooled events first, in the order handed over, then the direct ones: per citizen,
    # offsets follow the order of the calls.
    published = producer.published
    assert [p.event for p in published] == events
    for partition in {p.partition for p in published}:
        offsets = [p.offset for p in published if p.partition == partition]
        assert offsets == list(range(len(offsets)))
    sample = metrics.get_sample_value
    labels = {"producer": "dukcapil.siak"}
    assert sample("lintas_producer_spooled_total", labels) == 6
    assert sample("lintas_producer_forwarded_total", labels) == 6
    assert sample("lintas_producer_sent_total", {**labels, "topic": TOPIC}) == 3


async def test_a_full_spool_refuses_the_whole_call_with_the_numbers(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, producer=ProducerSettings(spool_max_bytes=1024**2))
    # About 540 bytes a record: 1,500 fit in 1 MiB, 2,500 do not.
    events = [_kematian(i, serial=i) for i in range(2500)]
    async with _fake(tmp_path, settings=settings, offline=True) as producer:
        await producer.send_many(events[:1500])
        with pytest.raises(SpoolFull) as full:
            await producer.send_many(events[1500:])
        assert producer.spooled == 1500, "nothing of the refused call was spooled"
    error = full.value
    assert error.records == 1500 and error.limit_bytes == 1024**2
    assert error.used_bytes + error.needed_bytes > error.limit_bytes
    assert error.needed_bytes > 0


async def test_a_topic_denied_while_spooled_is_set_apart_when_forwarded(tmp_path: Path) -> None:
    async with _fake(tmp_path, offline=True) as producer:
        spooled = await producer.send(_kematian(0))
        producer.deny(TOPIC)
        producer.go_online()
        assert producer.published == []
        assert [r.event_id for r in producer.rejected] == [spooled.event_id]
        with pytest.raises(NotAuthorized) as refused:
            await producer.send(_kematian(1))
        assert (refused.value.topic, refused.value.principal) == (TOPIC, "User:app-siak")
        producer.allow(TOPIC)
        assert (await producer.send(_kematian(1))).sent


async def test_schema_ids_come_from_the_catalog_registry_or_the_one_given(
    tmp_path: Path,
) -> None:
    async with _fake(tmp_path) as producer:
        delivery = await producer.send(_kematian(0))
        registry = producer.schema_registry
        assert producer.published[0].schema_id == await registry.lookup(
            KEMATIAN.subject, KEMATIAN.schema_str
        )
        assert delivery.sent
    # A registry without the schema gives the real producer's error, naming the subject.
    async with _fake(tmp_path, registry=InMemorySchemaResolver(), name="empty") as producer:
        with pytest.raises(SchemaUnavailable) as missing:
            await producer.send(_kematian(0))
    assert missing.value.subject == KEMATIAN.subject


async def test_clear_forgets_what_was_published(tmp_path: Path) -> None:
    async with _fake(tmp_path) as producer:
        await producer.send(_kematian(0))
        producer.clear()
        assert producer.published == []
        second = await producer.send(_kematian(0))
    assert [p.event_id for p in producer.published] == [second.event_id]
    assert second.offset == 1, "the broker's offsets go on: clear() forgets, Kafka would not"


def test_the_blocking_fake_simulates_the_same_faults(tmp_path: Path) -> None:
    with FakeProducer(app="siak", opd="dukcapil", settings=Settings(data_dir=tmp_path)) as fake:
        fake.deny(TOPIC)
        with pytest.raises(NotAuthorized):
            fake.send(_kematian(0))
        fake.allow(TOPIC)
        fake.go_offline()
        assert fake.send(_kematian(0)).status is DeliveryStatus.SPOOLED
        assert fake.spooled == 1
        fake.go_online()
        [published] = fake.published
    assert published.event == _kematian(0)


def test_the_testing_module_is_documented() -> None:
    assert testing.__doc__
    for name in testing.__all__:
        obj = getattr(testing, name)
        assert inspect.getdoc(obj), name
        if inspect.isclass(obj):
            for member, value in vars(obj).items():
                if not member.startswith("_") and callable(value):
                    assert inspect.getdoc(value), f"{name}.{member}"

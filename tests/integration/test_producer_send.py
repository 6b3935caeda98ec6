"""The producer SDK against the real broker and registry: sent, spooled, forwarded, in order."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from producer_helpers import duplicates_are_identical, first_seen_order, read_topic
from prometheus_client import CollectorRegistry

from lintas.kafka import KafkaConnection
from lintas.producers import DeliveryStatus, Event, EventProducer, Producer, spool_status
from lintas.schemas import (
    AvroDeserializer,
    build_nik,
    example_event,
    load_catalog,
    model_for,
    to_avro_dict,
)
from lintas.schemas.registry import SchemaRegistryClient
from lintas.settings import ProducerSettings, Settings

KEMATIAN = load_catalog().get("dukcapil.kematian_dicatat.v1")
HANG = 120  # bounds that catch a hang; timings are never asserted


class AvroBody:
    """cloudevents ``Format`` returning the Avro body as is."""

    def read_data(self, body: bytes, datacontenttype: str | None) -> bytes:
        return body


def _settings(tmp_path: Path, **producer: Any) -> Settings:
    options = {"spool_dir": tmp_path / "spool", "send_timeout_s": 10, "stop_timeout_s": 5}
    options.update(producer)
    return Settings(data_dir=tmp_path, producer=ProducerSettings(**options))


def _events(count: int, keys: int) -> list[Any]:
    """``count`` kematian events over ``keys`` citizens; event i is citizen i % keys."""
    import datetime as dt

    model = model_for(KEMATIAN)
    base = example_event(KEMATIAN)
    out = []
    for i in range(count):
        k = i % keys
        nik = build_nik(
            "32.73.01",
            dt.date(1940, 1, 1) + dt.timedelta(days=k),
            perempuan=False,
            nomor_urut=k + 1,
        )
        out.append(
            model.model_validate(
                {**base, "nik": nik, "nomor_akta_kematian": f"3273-KM-10062025-{i % 10000:04d}"}
            )
        )
    return out


def _producer(
    tmp_path: Path,
    conn: KafkaConnection,
    registry_url: str,
    topic: str,
    **kwargs: Any,
) -> EventProducer:
    options: dict[str, Any] = {
        "app": "siak",
        "opd": "dukcapil",
        "settings": _settings(tmp_path),
        "connection": conn,
        "registry": registry_url,
        "metrics_registry": CollectorRegistry(),
        "topic_of": lambda _: topic,
    }
    options.update(kwargs)
    return EventProducer(**options)


def _nowhere() -> KafkaConnection:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return KafkaConnection(bootstrap=f"127.0.0.1:{port}", username="u", password="p")


async def test_sent_events_are_in_kafka_where_the_delivery_says(
    kafka_conn: KafkaConnection,
    registry_url: str,
    topic_factory: Callable[..., Any],
    tmp_path: Path,
) -> None:
    topic = await topic_factory("test.sdk.", partitions=3)
    events = _events(600, keys=40)
    async with _producer(tmp_path, kafka_conn, registry_url, topic) as producer:
        first = await asyncio.wait_for(producer.send(events[0]), HANG)
        small = await producer.send_many(events[1:6])  # below the batch threshold
        rest = await asyncio.wait_for(producer.send_many(events[6:]), HANG)
        dict_delivery = await producer.send(
            example_event(KEMATIAN), event_type=KEMATIAN.id, event_id="idem-1"
        )
        assert not producer.spooling
    deliveries = [first, *small, *rest]
    assert {d.status for d in deliveries} == {DeliveryStatus.SENT}
    assert dict_delivery.sent and dict_delivery.event_id == "idem-1"

    reads = await read_topic(kafka_conn, topic)
    assert len(reads) == 601
    by_id = {r.event_id: r for r in reads}
    async with SchemaRegistryClient(registry_url) as registry:
        deserializer = AvroDeserializer(registry)
        for event, delivery in zip(events, deliveries, strict=True):
            read = by_id[delivery.event_id]
            assert (read.partition, read.offset) == (delivery.partition, delivery.offset)
            assert read.key == event.nik.encode()
            decoded = await deserializer.deserialize(read.value, topic=topic)
            assert decoded == to_avro_dict(event)
    ce = from_binary(KafkaMessage(by_id["idem-1"].headers, None, b"x"), AvroBody())  # type: ignore[arg-type]
    assert (ce.get_type(), ce.get_source()) == (KEMATIAN.id, "/opd/dukcapil/siak")
    assert ce.get_subject() == example_event(KEMATIAN)["nik"]

    order = first_seen_order(reads)
    sent_order: dict[bytes, list[str]] = {}
    for event, delivery in zip(events, deliveries, strict=True):
        sent_order.setdefault(event.nik.encode(), []).append(delivery.event_id)
    for key, ids in sent_order.items():
        assert order[key][: len(ids)] == ids, "a citizen's events are out of order"
    assert duplicates_are_identical(reads) == {}


async def test_spooled_events_are_forwarded_in_order_after_a_restart(
    kafka_conn: KafkaConnection,
    registry_url: str,
    topic_factory: Callable[..., Any],
    tmp_path: Path,
) -> None:
    topic = await topic_factory("test.sdk.", partitions=3)
    events = _events(3000, keys=30)
    # The app runs while the network is down: everything goes to the spool.
    offline = _producer(
        tmp_path, _nowhere(), registry_url, topic, settings=_settings(tmp_path, start_timeout_s=1)
    )
    async with offline:
        spooled = await offline.send_many(events[:2500])
        assert {d.status for d in spooled} == {DeliveryStatus.SPOOLED}
    (info,) = spool_status(_settings(tmp_path))
    assert info.records == 2500

    # It restarts with the network back: the spool is forwarded first, then new events
    # queue behind it (spooled or sent, never ahead of it).
    async with _producer(tmp_path, kafka_conn, registry_url, topic) as online:
        later = await online.send_many(events[2500:])
        await asyncio.wait_for(online.flush(60), HANG)
        assert online.spooled == 0 and not online.spooling
        after = await online.send(events[0], event_id="after-flush")
        assert after.sent

    reads = await read_topic(kafka_conn, topic)
    ids = [d.event_id for d in [*spooled, *later]]
    assert {r.event_id for r in reads} == {*ids, "after-flush"}
    order = first_seen_order(reads)
    expected: dict[bytes, list[str]] = {}
    for event, event_id in zip(events, ids, strict=True):
        expected.setdefault(event.nik.encode(), []).append(event_id)
    for key, key_ids in expected.items():
        assert order[key][: len(key_ids)] == key_ids
    duplicates_are_identical(reads)

    (info,) = spool_status(_settings(tmp_path))
    assert (info.records, info.bytes) == (0, 0)
    folder = tmp_path / "spool" / "dukcapil.siak"
    on_disk = b"".join(p.read_bytes() for p in folder.iterdir())
    assert events[0].nik.encode() not in on_disk, "forwarded personal data lingers on disk"


async def test_the_blocking_producer_sends(
    kafka_conn: KafkaConnection,
    registry_url: str,
    topic_factory: Callable[..., Any],
    tmp_path: Path,
) -> None:
    topic = await topic_factory("test.sdk.", partitions=1)
    events = _events(20, keys=3)

    def run() -> list[Any]:
        with Producer(
            app="siak",
            opd="dukcapil",
            settings=_settings(tmp_path),
            connection=kafka_conn,
            registry=registry_url,
            metrics_registry=CollectorRegistry(),
            topic_of=lambda _: topic,
        ) as producer:
            out = [producer.send(events[0])]
            out += producer.send_many([Event(data=e) for e in events[1:]])
            producer.flush(10)
            return out

    deliveries = await asyncio.wait_for(asyncio.to_thread(run), HANG)
    assert [d.offset for d in deliveries] == list(range(20))
    reads = await read_topic(kafka_conn, topic, partitions=1)
    assert [r.event_id for r in reads] == [d.event_id for d in deliveries]


async def test_cli_flush_forwards_a_spool_no_process_holds(
    kafka_conn: KafkaConnection,
    registry_url: str,
    topic_factory: Callable[..., Any],
    tmp_path: Path,
) -> None:
    import os
    import subprocess
    import sys

    topic = await topic_factory("test.sdk.", partitions=3)
    events = _events(50, keys=5)
    async with _producer(
        tmp_path, _nowhere(), registry_url, topic, settings=_settings(tmp_path, start_timeout_s=1)
    ) as offline:
        spooled = await offline.send_many(events)
    env = {**os.environ, "LINTAS_PRODUCER__SPOOL_DIR": str(tmp_path / "spool")}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "lintas.cli", "spool", "flush", "--name", "dukcapil.siak"],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "forwarded 50, waiting 0" in done.stdout
    reads = await read_topic(kafka_conn, topic)
    assert sorted(r.event_id for r in reads) == sorted(d.event_id for d in spooled)

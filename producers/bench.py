"""``lintas bench sdk``: the SDK's ``send_many`` against a raw aiokafka producer.

Both send the same events to the same fresh topic on the running broker, in the same run,
with the same producer settings (acks=all, idempotence, ``linger_ms``, ``batch_bytes``):

- **lintas**: ``EventProducer.send_many`` with catalog models, i.e. Avro encoding with the
  registry's schema id, the CloudEvents headers, the key, the ordering bookkeeping and the
  acknowledgement wait included.
- **baseline**: what a Python service would write by hand with aiokafka: the same records,
  encoded beforehand (value, key and headers as the SDK produces them), sent with
  ``AIOKafkaProducer.send`` and the futures gathered per batch.
- **baseline_batch** (reported, not the ratio's base): the same records through aiokafka's
  ``create_batch``/``send_batch``, aiokafka's fastest path, which the SDK also uses for
  calls of 16 events or more.

Each side sends ``batch`` events per call for ``seconds``, after a warm-up; the loops
alternate twice so that broker-side effects (log segment rolls, page cache) hit both.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from lintas.kafka import KafkaConnection, create_admin, create_producer
from lintas.schemas import EventModel, EventType, build_nik, example_event, load_catalog, model_for
from lintas.settings import Settings, load_settings

from ._producer import EventProducer, kafka_options_for
from ._record import Record

__all__ = ["bench_sdk"]

EVENT_TYPE = "dukcapil.kematian_dicatat.v1"
_KEYS = 500  # distinct citizens per batch: keys spread over every partition


def _events(event_type: EventType, count: int) -> list[EventModel]:
    """``count`` valid events for ``_KEYS`` different citizens (NIKs)."""
    import datetime as dt

    model = model_for(event_type)
    base = example_event(event_type)
    events = []
    for i in range(count):
        nik = build_nik(
            "32.73.01",
            dt.date(1950, 1, 1) + dt.timedelta(days=i % _KEYS),
            perempuan=bool(i % 2),
            nomor_urut=1 + i % _KEYS,
        )
        events.append(model.model_validate({**base, "nik": nik}))
    return events


async def _rate(send: Callable[[], Awaitable[None]], seconds: float, batch: int) -> float:
    await send()  # warm-up: metadata, schema id, connections
    done = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        await send()
        done += batch
    return done / elapsed


async def bench_sdk(
    *,
    seconds: float = 5.0,
    batch: int = 1000,
    settings: Settings | None = None,
    conn: KafkaConnection | None = None,
    registry_url: str | None = None,
) -> dict[str, Any]:
    """Measure events per second, SDK vs raw aiokafka, on a fresh 3-partition topic.

    Args:
        seconds: time spent in each measured loop (each side runs two loops).
        batch: events per ``send_many`` call (and per gathered batch of the baseline).
        settings: the Lintas settings; read from ``LINTAS_*`` when not given.
        conn, registry_url: the broker and registry; from the settings when not given.
    """
    from aiokafka.admin import NewTopic
    from aiokafka.partitioner import murmur2

    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    settings = settings or load_settings()
    if conn is None:
        from lintas.endpoints import kafka_connection

        conn = kafka_connection(settings)
    if registry_url is None:
        from lintas.endpoints import registry_url as configured_registry

        registry_url = configured_registry(settings)
    event_type = load_catalog().get(EVENT_TYPE)
    events = _events(event_type, batch)
    topic = f"bench.sdk.{uuid.uuid4().hex[:10]}"
    admin = create_admin(conn)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 3, 1)])
    spool_dir = Path(tempfile.mkdtemp(prefix="lintas-bench-"))
    bench_settings = settings.model_copy(
        update={"producer": settings.producer.model_copy(update={"spool_dir": spool_dir})}
    )
    try:
        producer = EventProducer(
            app="bench",
            opd=event_type.opd,
            name="bench",
            settings=bench_settings,
            connection=conn,
            registry=registry_url,
            metrics_registry=CollectorRegistry(),
            topic_of=lambda _: topic,
        )
        async with producer:

            async def lintas() -> None:
                await producer.send_many(events)

            # The baseline's records: exactly the bytes the SDK sends.
            assert producer._encoder is not None
            records: list[Record] = await producer._encoder.encode(events)
            raw = create_producer(conn, **kafka_options_for(settings))
            await raw.start()
            try:
                partitions = sorted(await raw.partitions_for(topic))

                async def baseline() -> None:
                    futures = [
                        await raw.send(r.topic, r.value, key=r.key, headers=r.headers)
                        for r in records
                    ]
                    await asyncio.gather(*futures)

                async def baseline_batch() -> None:
                    open_batches: dict[int, Any] = {}
                    futures = []
                    for r in records:
                        partition = partitions[(murmur2(r.key) & 0x7FFFFFFF) % len(partitions)]
                        builder = open_batches.get(partition)
                        if builder is None:
                            builder = open_batches[partition] = raw.create_batch()
                        if (
                            builder.append(
                                key=r.key, value=r.value, timestamp=None, headers=r.headers
                            )
                            is None
                        ):
                            futures.append(
                                await raw.send_batch(builder, topic, partition=partition)
                            )
                            builder = open_batches[partition] = raw.create_batch()
                            builder.append(
                                key=r.key, value=r.value, timestamp=None, headers=r.headers
                            )
                    for partition, builder in open_batches.items():
                        futures.append(await raw.send_batch(builder, topic, partition=partition))
                    await asyncio.gather(*futures)

                rates: dict[str, list[float]] = {"lintas": [], "baseline": [], "batch": []}
                for _ in range(2):
                    rates["baseline"].append(await _rate(baseline, seconds, batch))
                    rates["lintas"].append(await _rate(lintas, seconds, batch))
                    rates["batch"].append(await _rate(baseline_batch, seconds, batch))
            finally:
                await raw.stop()
            spooled = producer.spooled
    finally:
        await admin.delete_topics([topic])
        await admin.close()
    lintas_rate = sum(rates["lintas"]) / 2
    baseline_rate = sum(rates["baseline"]) / 2
    batch_rate = sum(rates["batch"]) / 2
    return {
        "bench": "sdk",
        "event_type": EVENT_TYPE,
        "record_bytes": len(records[0].value),
        "batch": batch,
        "lintas_per_s": round(lintas_rate),
        "baseline_per_s": round(baseline_rate),
        "ratio": round(lintas_rate / baseline_rate, 3),
        "baseline_batch_per_s": round(batch_rate),
        "batch_ratio": round(lintas_rate / batch_rate, 3),
        "spooled": spooled,
        "linger_ms": settings.producer.linger_ms,
        "batch_bytes": settings.producer.batch_bytes,
        "unit": "events/s acknowledged (acks=all, idempotent)",
    }

"""``lintas bench streams``: a stream worker against a plain aiokafka loop, same records.

Throughput: N valid ``kematian_dicatat`` records are produced to a fresh OPD topic first; then
each contender turns them into canonical records while an observer consumer times the
outputs, from the first to the last (so start-up and group joins are not counted):

- ``worker``: a real ``lintas worker`` process (faust, every stage: validation, dedup, ...);
- ``baseline``: one aiokafka consumer and producer in this process, per record decoding the
  Avro value and encoding a canonical record: the consume-decode-encode-produce loop anyone
  would write by hand, without validation;
- ``baseline_same_work``: the same loop running the worker's :class:`Processor` (validation
  and canonicalization included), which separates faust's cost from the stages' cost.

Latency: with the worker caught up, records are offered at a steady 1,000 per second and the
time from send to the canonical record's arrival at the observer is measured per event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from lintas.endpoints import kafka_connection, registry_url
from lintas.kafka import KafkaConnection, create_consumer, create_producer
from lintas.schemas import (
    AvroDeserializer,
    AvroSerializer,
    EventType,
    encode,
    load_catalog,
    parse_schema,
)
from lintas.schemas.registry import SchemaRegistryClient
from lintas.settings import Settings

from ._kafka import partition_ids
from .canonical import CanonicalEncoder, Origin, canonical_record, canonical_schema
from .envelope import read_envelope
from .exceptions import RegistryRequired
from .processor import Accepted, Processor, SourceRecord
from .testing import (
    OpdRecord,
    StreamsNamespace,
    WorkerProcess,
    create_topics,
    delete_namespace,
    opd_record,
    produce,
    varied_event,
)

__all__ = ["bench_streams"]

EVENT_TYPE = "dukcapil.kematian_dicatat.v1"
OFFERED_PER_S = 1000
_MIN_EVENTS = 5000
_WAIT_S = 300.0


class _Observer:
    """Consumes an output topic from the beginning; remembers when each event id arrived."""

    def __init__(self, conn: KafkaConnection, topic: str) -> None:
        self._conn = conn
        self.topic = topic
        self.arrived: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        await self._ready.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        from aiokafka import TopicPartition

        partitions = await partition_ids(self._conn, self.topic, wait_s=_WAIT_S)
        consumer = create_consumer(self._conn, fetch_max_wait_ms=20)
        await consumer.start()
        try:
            tps = [TopicPartition(self.topic, p) for p in partitions]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            self._ready.set()
            while True:
                batch = await consumer.getmany(timeout_ms=100)
                now = time.perf_counter()
                for records in batch.values():
                    for r in records:
                        event_id = dict(r.headers or ()).get("ce_id", b"").decode()
                        self.arrived.setdefault(event_id, now)
        finally:
            self._ready.set()
            await consumer.stop()

    async def wait_for(self, ids: set[str], alive: Callable[[], bool] = lambda: True) -> None:
        deadline = time.monotonic() + _WAIT_S
        while not ids <= self.arrived.keys():
            if time.monotonic() > deadline or not alive():
                missing = len(ids - self.arrived.keys())
                raise TimeoutError(f"{missing} events never reached {self.topic}")
            await asyncio.sleep(0.05)

    def rate(self, ids: set[str]) -> float:
        times = sorted(self.arrived[i] for i in ids)
        return (len(times) - 1) / (times[-1] - times[0])


async def _plain_loop(
    conn: KafkaConnection,
    source: str,
    out: str,
    count: int,
    handle: Callable[[Any], Awaitable[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]],
    group: str,
) -> None:
    """Consume ``count`` records, turn each into an output with ``handle``, produce it."""
    consumer = create_consumer(conn, source, group_id=group, max_poll_records=500)
    producer = create_producer(conn, linger_ms=5)
    await consumer.start()
    await producer.start()
    try:
        done = 0
        while done < count:
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            futures = []
            for records in batch.values():
                for r in records:
                    key, value, headers = await handle(r)
                    futures.append(await producer.send(out, key=key, value=value, headers=headers))
            await asyncio.gather(*futures)
            done += len(futures)
            if futures:
                await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


async def _baselines(
    conn: KafkaConnection,
    registry: SchemaRegistryClient,
    ns: StreamsNamespace,
    event_type: EventType,
    ids: set[str],
) -> tuple[float, float]:
    source = ns.names.source(event_type.id)
    deserializer = AvroDeserializer(registry, reader=event_type)
    encoder = CanonicalEncoder(registry, ns.names)
    schema_id = await encoder.register(event_type)
    parsed = parse_schema(canonical_schema(event_type))

    async def plain(r: Any) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
        payload = await deserializer.deserialize(r.value, topic=r.topic)
        envelope = read_envelope(list(r.headers))
        record = canonical_record(
            event_type,
            envelope,
            payload,
            origin=Origin(
                topic=r.topic, partition=r.partition, offset=r.offset, timestamp_ms=r.timestamp
            ),
            key=r.key,
            ingest_time=dt.datetime.now(dt.UTC),
        )
        return r.key, encode(schema_id, parsed, record), list(r.headers)

    processor = Processor(registry, ns.names)

    async def same_work(r: Any) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
        record = SourceRecord(
            topic=r.topic,
            partition=r.partition,
            offset=r.offset,
            timestamp_ms=r.timestamp,
            key=r.key,
            value=r.value,
            headers=list(r.headers),
        )
        outcome = await processor.process(record, now=dt.datetime.now(dt.UTC))
        assert isinstance(outcome, Accepted), outcome
        return outcome.key, outcome.value, outcome.headers

    rates = []
    for name, handle in (("plain", plain), ("same", same_work)):
        out = f"{ns.prefix}bench.{name}"
        await create_topics(conn, [out], partitions=ns.partitions)
        observer = _Observer(conn, out)
        await observer.start()
        try:
            await _plain_loop(conn, source, out, len(ids), handle, f"{ns.app_id}-{name}")
            await observer.wait_for(ids)
            rates.append(observer.rate(ids))
        finally:
            await observer.stop()
    return rates[0], rates[1]


async def _records(
    serializer: AvroSerializer, event_type: EventType, count: int, start: int
) -> list[OpdRecord]:
    return [
        await opd_record(serializer, event_type, varied_event(event_type, start + i))
        for i in range(count)
    ]


async def _latency(
    conn: KafkaConnection,
    source: str,
    records: list[OpdRecord],
    observer: _Observer,
    alive: Callable[[], bool],
) -> dict[str, Any]:
    producer = create_producer(conn, linger_ms=0)
    await producer.start()
    sent: dict[str, float] = {}
    try:
        start = time.perf_counter()
        futures = []
        for i, r in enumerate(records):
            delay = start + i / OFFERED_PER_S - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[r.event_id] = time.perf_counter()
            futures.append(await producer.send(source, key=r.key, value=r.value, headers=r.headers))
        await asyncio.gather(*futures)
        offered = len(records) / (time.perf_counter() - start)
    finally:
        await producer.stop()
    await observer.wait_for(set(sent), alive)
    latencies = sorted((observer.arrived[i] - t) * 1000 for i, t in sent.items())
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "offered_per_s": round(offered),
        "events": len(latencies),
        "p50_ms": round(cuts[49], 1),
        "p99_ms": round(cuts[98], 1),
        "max_ms": round(latencies[-1], 1),
    }


async def bench_streams(*, seconds: float = 5.0, settings: Settings) -> dict[str, Any]:
    """Measure a worker's events/s against plain aiokafka loops, and its latency at 1,000/s.

    Args:
        seconds: length of the steady-load latency run; the throughput runs use
            ``max(5000, 2000 * seconds)`` events.
        settings: where Kafka and the registry are (the worker gets the same settings).
    """
    url = registry_url(settings)
    if url is None:
        raise RegistryRequired()
    conn = kafka_connection(settings)
    event_type = load_catalog().get(EVENT_TYPE)
    ns = StreamsNamespace.fresh(partitions=settings.kafka.partitions, label="bench")
    count = max(_MIN_EVENTS, int(2000 * seconds))
    source = ns.names.source(event_type.id)
    await create_topics(conn, [source], partitions=ns.partitions)
    workdir = Path(tempfile.mkdtemp(prefix="lintas-bench-"))
    worker: WorkerProcess | None = None
    try:
        async with SchemaRegistryClient(url) as registry:
            serializer = AvroSerializer(registry, auto_register=True)
            records = await _records(serializer, event_type, count, 0)
            await produce(conn, source, records)
            ids = {r.event_id for r in records}
            baseline, same_work = await _baselines(conn, registry, ns, event_type, ids)
            observer = _Observer(conn, ns.names.canonical(event_type.id))
            env = ns.env({"LINTAS_DATA_DIR": str(settings.data_dir)})
            worker = WorkerProcess(env, log_path=workdir / "worker.log")
            await observer.start()
            try:
                await observer.wait_for(ids, lambda: worker is not None and worker.alive)
                worker_rate = observer.rate(ids)
                steady = await _records(serializer, event_type, int(OFFERED_PER_S * seconds), count)
                latency = await _latency(conn, source, steady, observer, lambda: worker.alive)
            finally:
                await observer.stop()
    finally:
        if worker is not None:
            worker.stop(timeout=10)
        await delete_namespace(conn, ns, url)
    return {
        "bench": "streams",
        "event_type": EVENT_TYPE,
        "events": count,
        "partitions": ns.partitions,
        "worker_per_s": round(worker_rate),
        "baseline_per_s": round(baseline),
        "ratio": round(worker_rate / baseline, 3),
        "baseline_same_work_per_s": round(same_work),
        "ratio_same_work": round(worker_rate / same_work, 3),
        "latency": latency,
        "unit": "events/s, OPD topic in to canonical topic out",
    }

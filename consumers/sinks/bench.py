"""``lintas bench sink``: the store sink against a raw asyncpg COPY of the same rows.

Everything happens in a database and under a topic prefix of the benchmark's own, dropped
afterwards; the sink is a real ``lintas sink`` process.

- **Throughput**: N canonical events of three event types (``kematian_dicatat``,
  ``bansos_disalurkan``, ``kk_diperbarui``) are produced first; then the sink reads them and
  the rows are counted as they become visible (by the offsets the sink commits with them),
  from the first committed batch to the last (so start-up and the group join are not
  counted). Each event is one row of
  ``store.raw_events`` and one of its typed table.
- **Baseline**: the same raw and typed rows, built in memory beforehand, written with
  ``copy_records_to_table`` straight into empty copies of the same tables (indexes
  included), one COPY per table in one transaction: the fastest way asyncpg has to put
  these rows into PostgreSQL, with no Kafka, no decoding, no staging and no deduplication.
  It runs before, between and after the sink's runs; the median counts.
- **Freshness**: with the sink caught up, events are offered at a steady 1,000 per second;
  the time from each send to its row being visible in ``store.raw_events`` (polled every
  20 ms, per event id) gives p50 and p99.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from lintas.consumers.store.connection import connect_store
from lintas.consumers.store.ddl import table_name
from lintas.consumers.store.prepare import catalog_shape, prepare_store
from lintas.consumers.store.rows import (
    PAYLOAD_FIELD,
    RAW_COLUMNS,
    raw_row,
    typed_columns,
    typed_row,
)
from lintas.endpoints import resolve_endpoints
from lintas.migrate import migrate
from lintas.postgres import connect
from lintas.schemas import EventType, load_catalog
from lintas.schemas.registry import SchemaRegistryClient
from lintas.settings import Settings

from .testing import CanonicalTopics, SinkProcess, canonical_event, sink_env, varied_payload

__all__ = ["bench_sink"]

_TYPES = (
    "dukcapil.kematian_dicatat.v1",
    "dinsos.bansos_disalurkan.v1",
    "dukcapil.kk_diperbarui.v1",
)
_OFFERED_PER_S = 1000
_POLL_S = 0.02


async def _count(conn: Any) -> int:
    # The offsets commit in the rows' transaction and the benchmark has no repeats, so their
    # sum is the rows visible; a count(*) would scan the growing table every 50 ms and take
    # the database's CPU from the sink it measures.
    return int(await conn.fetchval("SELECT coalesce(sum(next_offset), 0) FROM lintas.sink_offsets"))


async def _throughput(conn: Any, total: int, sink: SinkProcess) -> float:
    """Events per second from the first committed batch to the last row."""
    start_count = 0
    first = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        count = await _count(conn)
        now = time.monotonic()
        if first is None and count > 0:
            first, start_count = now, count
        if count >= total:
            if first is None or now <= first:
                raise RuntimeError("the sink wrote everything in one batch: offer more events")
            return (count - start_count) / (now - first)
        if not sink.alive:
            raise RuntimeError("the sink exited:\n" + sink.log_tail())
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the sink stored {await _count(conn)} of {total} events in 600 s")


_Rows = tuple[list[tuple[Any, ...]], dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]]]


def _baseline_rows(events: dict[EventType, list[dict[str, Any]]]) -> _Rows:
    """The raw rows, and per typed table its columns and rows, of ``events``."""
    raw_rows: list[tuple[Any, ...]] = []
    typed: dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]] = {}
    for event_type, records in events.items():
        shape = catalog_shape(event_type)
        nik_paths = [p for p, kind in shape.pii_paths.items() if kind == "nik"]
        rows = []
        for offset, record in enumerate(records):
            raw = raw_row(
                record, nik_paths=nik_paths, schema_id=1, topic="bench", partition=0, offset=offset
            )
            raw_rows.append(raw)
            rows.append(typed_row(raw, record[PAYLOAD_FIELD], shape))
        typed[table_name(event_type.id)] = (typed_columns(shape), rows)
    return raw_rows, typed


async def _copy_once(conn: Any, rows: _Rows, run: int) -> float:
    """Events per second of one raw COPY of ``rows`` into empty copies of the tables."""
    raw_rows, typed = rows
    await conn.execute(f"CREATE TABLE store.bench_raw_{run} (LIKE store.raw_events INCLUDING ALL)")
    for table in typed:
        await conn.execute(
            f'CREATE TABLE store."bench_{run}_{table}" (LIKE store."{table}" INCLUDING ALL)'
        )
    started = time.perf_counter()
    async with conn.transaction():
        await conn.copy_records_to_table(
            f"bench_raw_{run}", records=raw_rows, columns=list(RAW_COLUMNS), schema_name="store"
        )
        for table, (columns, typed_rows) in typed.items():
            await conn.copy_records_to_table(
                f"bench_{run}_{table}",
                records=typed_rows,
                columns=list(columns),
                schema_name="store",
            )
    return len(raw_rows) / (time.perf_counter() - started)


async def _freshness(
    conn: Any, topics: CanonicalTopics, event_types: list[EventType], seconds: float
) -> list[float]:
    """Seconds from send to visible row, per event offered at 1,000/s."""
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    done = asyncio.Event()

    async def offer() -> None:
        tick = 0.01
        per_tick = int(_OFFERED_PER_S * tick)
        start = time.monotonic()
        n = 10_000_000
        for i in range(int(seconds / tick)):
            batch = []
            for _ in range(per_tick):
                event_type = event_types[n % len(event_types)]
                event = canonical_event(event_type, varied_payload(event_type, n))
                batch.append((event_type, event))
                n += 1
            now = time.monotonic()
            for event_type, event in batch:
                sent[event["event_id"]] = now
                await topics.produce(event_type, [event], wait=False)
            await asyncio.sleep(max(0.0, start + (i + 1) * tick - time.monotonic()))
        done.set()

    async def watch() -> None:
        while True:
            pending = [i for i in sent if i not in seen]
            if not pending and done.is_set():
                return
            if pending:
                rows = await conn.fetch(
                    "SELECT event_id FROM store.raw_events WHERE event_id = ANY($1::text[])",
                    pending,
                )
                now = time.monotonic()
                for row in rows:
                    seen[row[0]] = now
            await asyncio.sleep(_POLL_S)

    await asyncio.wait_for(asyncio.gather(offer(), watch()), timeout=seconds + 120)
    return [seen[i] - sent[i] for i in sent]


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1]


async def bench_sink(*, seconds: float, settings: Settings) -> dict[str, Any]:
    """Run the benchmark against the stack ``settings`` point at; the figures.

    Args:
        seconds: length of the freshness run; the throughput run offers 8,000 events per
            second of it (at least 40,000).
        settings: the platform's settings (Kafka, PostgreSQL, registry).
    """
    endpoints = resolve_endpoints(settings)
    if not endpoints.registry_url:
        raise RuntimeError("the sink benchmark needs the schema registry (LINTAS_REGISTRY_URL)")
    catalog = load_catalog()
    event_types = [catalog.get(t) for t in _TYPES]
    total = max(40_000, int(8000 * seconds))
    events: dict[EventType, list[dict[str, Any]]] = {t: [] for t in event_types}
    for n in range(total):
        event_type = event_types[n % len(event_types)]
        events[event_type].append(canonical_event(event_type, varied_payload(event_type, n)))

    name = f"lintas_bench_{uuid.uuid4().hex[:8]}"
    admin = await connect(endpoints.pg_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = f"{endpoints.pg_dsn.rpartition('/')[0]}/{name}"
    figures: dict[str, Any] = {"events": total, "event_types": list(_TYPES)}
    try:
        await migrate(dsn)
        async with SchemaRegistryClient(endpoints.registry_url) as registry:
            topics = CanonicalTopics(endpoints.kafka, registry, f"bench{uuid.uuid4().hex[:6]}.")
            conn = await connect_store(dsn, application_name="lintas-bench-sink")
            log_dir = tempfile.TemporaryDirectory(prefix="lintas-bench-sink-")
            env = sink_env(
                kafka=endpoints.kafka,
                registry_url=endpoints.registry_url,
                pg_dsn=dsn,
                group_id=f"bench-{topics.prefix}",
                topic_prefix=topics.prefix,
            )
            try:
                await prepare_store(conn, catalog=catalog, timezone=settings.timezone)
                await topics.create(event_types, partitions=settings.kafka.partitions)
                for event_type, records in events.items():
                    await topics.produce(event_type, records)
                # The baseline runs before, between and after the sink's runs, and counts
                # its median: on a shared machine the load drifts more than COPY varies.
                rows = _baseline_rows(events)
                copy_rates = [await _copy_once(conn, rows, 0)]
                with SinkProcess(env, log_path=Path(log_dir.name) / "sink.log") as sink:
                    sink_rate = await _throughput(conn, total, sink)
                    copy_rates.append(await _copy_once(conn, rows, 1))
                    latencies = await _freshness(conn, topics, event_types, seconds)
                    sink.stop()
                copy_rates.append(await _copy_once(conn, rows, 2))
                copy_rate = statistics.median(copy_rates)
            finally:
                await conn.close()
                await topics.close()
                log_dir.cleanup()
        figures.update(
            sink_events_per_s=round(sink_rate),
            copy_events_per_s=round(copy_rate),
            copy_events_per_s_runs=[round(r) for r in copy_rates],
            ratio=round(sink_rate / copy_rate, 3),
            target_ratio=0.5,
            offered_per_s=_OFFERED_PER_S,
            freshness_events=len(latencies),
            freshness_p50_ms=round(_percentile(latencies, 0.5) * 1000, 1),
            freshness_p99_ms=round(_percentile(latencies, 0.99) * 1000, 1),
            freshness_max_ms=round(max(latencies) * 1000, 1),
            target_p99_ms=1000,
            batch_max_rows=settings.sink.batch_max_rows,
            max_delay_ms=settings.sink.max_delay_ms,
        )
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return figures

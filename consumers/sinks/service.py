"""``lintas sink`` as a service: the store sink built from the settings, stopped by a signal."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

from lintas.consumers.store.rows import RAW_COLUMNS
from lintas.directory import ActivityTracker
from lintas.endpoints import Endpoints
from lintas.settings import Settings
from lintas.topics import DLQ_TOPIC

from ._convert import StoredEvent, canonical_pattern
from .base import BatchingConfig
from .postgres import PostgresSink

__all__ = ["run_sink", "sink_config", "sink_status"]


def sink_config(settings: Settings) -> BatchingConfig:
    """The store sink's consumer and batching configuration from the settings."""
    sink = settings.sink
    return BatchingConfig(
        group_id=sink.group_id,
        pattern=canonical_pattern(settings.streams.topic_prefix),
        batch_max=sink.batch_max_rows,
        max_delay_s=sink.max_delay_ms / 1000,
        instance_id=sink.instance_id,
        session_timeout_s=sink.session_timeout_s,
        topic_refresh_s=sink.topic_refresh_s,
        retry_max_s=sink.retry_max_s,
    )


async def run_sink(settings: Settings, endpoints: Endpoints, registry_url: str) -> None:
    """Run the store sink until SIGTERM or SIGINT; then write what it holds and stop.

    Args:
        settings: the platform's settings (``sink``, ``streams.topic_prefix``, ``timezone``).
        endpoints: where Kafka and the store's database are.
        registry_url: the schema registry the canonical schemas are in.
    """
    from lintas.directory import Directory
    from lintas.schemas.registry import SchemaRegistryClient

    directory = await Directory.open(settings, pg_dsn=endpoints.pg_dsn, publish=False)
    tracker = ActivityTracker(directory)
    await tracker.start()
    retention = _start_retention(settings, endpoints.pg_dsn)
    try:
        async with SchemaRegistryClient(registry_url) as registry:
            await _run(settings, endpoints, registry, tracker)
    finally:
        retention.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await retention
        await tracker.stop()
        await directory.close()


def _start_retention(settings: Settings, dsn: str) -> asyncio.Task[None]:
    """The store's retention job, every ``LINTAS_RETENTION__INTERVAL_S``, beside the sink
    (several sinks take turns: the job runs under a lock)."""
    from lintas.consumers.store.retention import run_retention_periodically
    from lintas.schemas import load_catalog

    job = run_retention_periodically(
        dsn,
        settings.retention,
        audit_days=settings.audit.retention_days,
        event_types=load_catalog(),
    )
    return asyncio.create_task(job, name="store-retention")


_APPLICATION = RAW_COLUMNS.index("application")
_INGEST_TIME = RAW_COLUMNS.index("ingest_time")


def count_produced(tracker: ActivityTracker, events: list[StoredEvent]) -> None:
    """Count stored events as produced by their applications (the integrated indicator)."""
    for event in events:
        tracker.produced(event.raw[_APPLICATION], at=event.raw[_INGEST_TIME])


async def _run(
    settings: Settings, endpoints: Endpoints, registry: Any, tracker: ActivityTracker
) -> None:
    from lintas.schemas import load_catalog

    sink = PostgresSink(
        endpoints.kafka,
        sink_config(settings),
        dsn=endpoints.pg_dsn,
        registry=registry,
        catalog=load_catalog(),
        topic_prefix=settings.streams.topic_prefix,
        dlq_topic=settings.streams.topic_prefix + DLQ_TOPIC,
        timezone=settings.timezone,
        on_written=lambda events: count_produced(tracker, events),
    )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: asyncio.ensure_future(sink.stop()))
    await sink.start()
    await sink.run()


async def sink_status(conn: Any, sink: str) -> dict[str, Any]:
    """A sink's stored offsets per partition and the event types it stopped, from the store."""
    offsets = await conn.fetch(
        "SELECT topic, partition, next_offset, updated_at FROM lintas.sink_offsets "
        "WHERE sink = $1 ORDER BY topic, partition",
        sink,
    )
    stopped = await conn.fetch(
        "SELECT event_type, topic, reason, stopped_at FROM lintas.sink_stopped "
        "WHERE sink = $1 ORDER BY event_type",
        sink,
    )
    return {"offsets": [dict(r) for r in offsets], "stopped": [dict(r) for r in stopped]}

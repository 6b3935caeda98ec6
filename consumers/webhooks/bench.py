"""``lintas bench webhooks``: webhook deliveries per second to a local receiver.

Two figures from the same run, against the same receiver (an HTTP endpoint on 127.0.0.1 that
verifies every signature):

- **lintas**: events produced to a delivery topic, then drained by a :class:`Deliverer`
  (copy into the queue, dispatch, signed POST, result written): events delivered per second;
- **baseline**: signed POSTs straight from httpx with the same concurrency and no queue:
  the most the HTTP path alone allows on this machine.

The run works in a scratch database and on topics of its own, deleted afterwards, so it
leaves the platform's data untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from lintas.directory import Directory
from lintas.endpoints import resolve_endpoints
from lintas.exceptions import ConfigurationError
from lintas.kafka import KafkaConnection, create_admin, create_producer
from lintas.migrate import migrate
from lintas.postgres import connect
from lintas.schemas import example_event, load_catalog
from lintas.schemas.registry import SchemaRegistryClient
from lintas.settings import DeliverSettings, Settings

from .copier import delivery_topic
from .service import Deliverer
from .signing import WebhookSigner
from .testing import WebhookReceiver, delivery_headers, delivery_value, register_projection

__all__ = ["bench_webhooks"]

EVENT_TYPE = "dukcapil.kematian_dicatat.v1"
# Enough events that start-up (consumer group join, first schema fetch) is a small share.
_EVENTS_PER_SECOND_ASKED = 1000
_MIN_EVENTS = 500
_MAX_EVENTS = 50_000


@dataclass(frozen=True, slots=True)
class _Scratch:
    dsn: str
    directory_topic: str
    subscriber: str
    data_dir: Path


@contextlib.asynccontextmanager
async def _scratch(
    settings: Settings, pg_dsn: str, kafka: KafkaConnection
) -> AsyncIterator[_Scratch]:
    from aiokafka.admin import NewTopic

    tag = uuid.uuid4().hex[:10]
    db = f"lintas_bench_{tag}"
    admin_db = await connect(pg_dsn, application_name="lintas-bench")
    admin = create_admin(kafka)
    await admin.start()
    subscriber = f"bench-{tag}"
    topics = [f"bench.directory.{tag}", delivery_topic(subscriber)]
    try:
        await admin_db.execute(f'CREATE DATABASE "{db}"')
        dsn = f"{pg_dsn.rpartition('/')[0]}/{db}"
        await migrate(dsn)
        await admin.create_topics(
            [
                NewTopic(topics[0], 1, 1, topic_configs={"cleanup.policy": "compact"}),
                NewTopic(topics[1], settings.kafka.partitions, 1),
            ]
        )
        with tempfile.TemporaryDirectory(prefix="lintas-bench-") as tmp:
            yield _Scratch(dsn, topics[0], subscriber, Path(tmp))
    finally:
        with contextlib.suppress(Exception):
            await admin.delete_topics([*topics, f"{topics[1]}.dlq"])
        await admin.close()
        with contextlib.suppress(Exception):
            await admin_db.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await admin_db.close()


async def _baseline(
    url: str, signer: WebhookSigner, body: bytes, *, seconds: float, n: int
) -> float:
    """Signed POSTs per second with ``n`` concurrent senders and nothing else."""
    sent = 0
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:

        async def sender(index: int) -> None:
            nonlocal sent
            i = 0
            while time.perf_counter() < stop_at:
                event_id = f"baseline-{index}-{i}"
                headers = signer.headers(event_id, body, timestamp=int(time.time()))
                headers["Content-Type"] = "application/json"
                response = await client.post(url, content=body, headers=headers)
                response.raise_for_status()
                sent += 1
                i += 1

        started = time.perf_counter()
        await asyncio.gather(*(sender(i) for i in range(n)))
        return sent / (time.perf_counter() - started)


async def bench_webhooks(*, seconds: float, settings: Settings) -> dict[str, Any]:
    """Run the benchmark; returns its figures.

    Args:
        seconds: the baseline's duration; the number of events delivered by Lintas is
            ``1000 * seconds`` (between 500 and 50,000).
        settings: addresses of Kafka, PostgreSQL and the registry.
    """
    endpoints = resolve_endpoints(settings)
    if not endpoints.registry_url:
        raise ConfigurationError("LINTAS_REGISTRY_URL", "the benchmark needs the schema registry")
    event_type = load_catalog().get(EVENT_TYPE)
    count = min(_MAX_EVENTS, max(_MIN_EVENTS, int(_EVENTS_PER_SECOND_ASKED * seconds)))
    concurrency = settings.deliver.max_in_flight
    async with _scratch(settings, endpoints.pg_dsn, endpoints.kafka) as scratch:
        run_settings = settings.model_copy(
            update={
                "pg_dsn": scratch.dsn,
                "data_dir": scratch.data_dir,
                "deliver": DeliverSettings(
                    **{
                        **settings.deliver.model_dump(),
                        "group_id": f"lintas-bench-{scratch.subscriber}",
                        "directory_topic": scratch.directory_topic,
                        "poll_interval_s": 0.2,
                    }
                ),
            }
        )
        async with WebhookReceiver() as receiver:
            directory = await Directory.open(
                run_settings, pg_dsn=scratch.dsn, kafka=endpoints.kafka,
                topic=scratch.directory_topic,
            )  # fmt: skip
            try:
                await directory.add_opd({"code": "dinsos", "name": "Dinas Sosial"})
                _, secret = await directory.add_subscriber(
                    {"name": scratch.subscriber, "opd": "dinsos", "mode": "webhook",
                     "webhook_url": receiver.url}
                )  # fmt: skip
            finally:
                await directory.close()
            assert secret is not None
            receiver.set_secrets([secret])
            signer = WebhookSigner([secret])
            record = example_event(event_type)
            sample_body = b'{"specversion":"1.0","id":"x","type":"t","data":{}}'
            baseline = await _baseline(
                receiver.url, signer, sample_body, seconds=seconds, n=concurrency
            )

            topic = delivery_topic(scratch.subscriber)
            async with SchemaRegistryClient(endpoints.registry_url) as registry:
                schema_id, parsed = await register_projection(registry, topic, event_type, ["*"])
            producer = create_producer(endpoints.kafka, linger_ms=20)
            await producer.start()
            ids = []
            try:
                futures = []
                for i in range(count):
                    event_id = str(uuid.uuid4())
                    nik = f"3273{i:012d}"
                    value = delivery_value(schema_id, parsed, {**record, "nik": nik})
                    headers = delivery_headers(event_id, event_type, subject=nik)
                    futures.append(
                        await producer.send(topic, value=value, key=nik.encode(), headers=headers)
                    )
                    ids.append(event_id)
                await asyncio.gather(*futures)
            finally:
                await producer.stop()

            started = time.perf_counter()
            async with Deliverer(
                run_settings,
                kafka=endpoints.kafka,
                pg_dsn=scratch.dsn,
                registry_url=endpoints.registry_url,
            ) as deliverer:
                await receiver.wait_for_ids(ids, timeout=max(120.0, count / 50))
                elapsed = time.perf_counter() - started
                health = await deliverer.health(window=dt.timedelta(hours=1))
    rate = count / elapsed
    return {
        "events": count,
        "concurrency": concurrency,
        "lintas_deliveries_per_s": round(rate, 1),
        "baseline_posts_per_s": round(baseline, 1),
        "ratio": round(rate / baseline, 3) if baseline else None,
        "post_latency_p50_ms": _round(health[0].latency_p50_ms if health else None),
        "post_latency_p95_ms": _round(health[0].latency_p95_ms if health else None),
        "duplicates": len(receiver.duplicates()),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)

"""``lintas deliver redeliver``: take dead letters back into the delivery queue.

The dead-letter topic is read from its start to its end as it is now; each dead letter
chosen (all, or those whose ``ce_id`` is named) is queued again with its attempts reset and a
new deadline. An event that is pending or was delivered since is left alone, so running the
same redelivery twice sends nothing twice. When an event was dead-lettered more than once,
its latest dead letter is the one taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition

from lintas.kafka import KafkaConnection, create_admin, create_consumer

from .._dlq import DLQ_HEADER_PREFIX, dlq_topic, header_text, original_headers
from .._records import CE_ID, RecordDecoder
from .copier import to_queued
from .queue import DeliveryQueue, QueuedEvent

__all__ = ["RedeliveryReport", "read_dead_letters", "redeliver"]

_POLL_MS = 500


@dataclass(slots=True, kw_only=True)
class RedeliveryReport:
    """What a redelivery did.

    Attributes:
        subscriber: whose dead letters.
        read: dead letters read from the topic.
        chosen: distinct events chosen (by id, or all).
        requeued: events queued again.
        skipped: chosen events left alone (pending or delivered since).
        missing: named ids without a dead letter.
    """

    subscriber: str
    read: int = 0
    chosen: int = 0
    requeued: int = 0
    skipped: int = 0
    missing: list[str] = field(default_factory=list)


async def read_dead_letters(
    kafka: KafkaConnection, subscriber: str, *, timeout: float = 30.0
) -> list[Any]:
    """Every record of the subscriber's dead-letter topic, up to its end offsets now.

    Raises:
        TimeoutError: the topic could not be read to its end within ``timeout``.
    """
    topic = dlq_topic(subscriber)
    kafka = kafka.with_client_id("lintas-deliver-redeliver")
    partitions = await _partitions(kafka, topic)
    if not partitions:
        return []
    consumer = create_consumer(kafka, group_id=None)
    await consumer.start()
    records: list[Any] = []
    try:
        async with asyncio.timeout(timeout):
            tps = [TopicPartition(topic, p) for p in partitions]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            end = await consumer.end_offsets(tps)
            while True:
                behind = [tp for tp in tps if await consumer.position(tp) < end[tp]]
                if not behind:
                    break
                batches = await consumer.getmany(*behind, timeout_ms=_POLL_MS)
                for tp, batch in batches.items():
                    records += [r for r in batch if r.offset < end[tp]]
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
    records.sort(key=lambda r: (r.timestamp, r.partition, r.offset))
    return records


async def redeliver(
    kafka: KafkaConnection,
    queue: DeliveryQueue,
    decoder: RecordDecoder,
    subscriber: str,
    *,
    horizon: float,
    event_ids: Collection[str] | None = None,
    timeout: float = 30.0,
) -> RedeliveryReport:
    """Queue the subscriber's dead letters again.

    Args:
        kafka: the connection (Read on the dead-letter topic).
        queue: the delivery queue.
        decoder: turns the dead letters' values into webhook bodies again.
        subscriber: whose dead letters.
        horizon: seconds from now before a requeued event is given up again.
        event_ids: only these events (``ce_id``); None for every dead letter.
        timeout: seconds to read the dead-letter topic.
    """
    report = RedeliveryReport(subscriber=subscriber)
    latest: dict[str, Any] = {}
    for record in await read_dead_letters(kafka, subscriber, timeout=timeout):
        report.read += 1
        headers = list(record.headers or ())
        event_id = header_text(headers, CE_ID) or _coordinates(headers)
        if event_ids is None or event_id in event_ids:
            latest[event_id] = record
    if event_ids is not None:
        report.missing = sorted(set(event_ids) - set(latest))
    events: list[QueuedEvent] = []
    for record in latest.values():
        headers = list(record.headers or ())
        # Back to the coordinates it was first read at, so a second dead letter says so too.
        events.append(
            await to_queued(
                subscriber,
                decoder,
                topic=header_text(headers, DLQ_HEADER_PREFIX + "topic") or record.topic,
                partition=int(header_text(headers, DLQ_HEADER_PREFIX + "partition") or 0),
                offset=int(header_text(headers, DLQ_HEADER_PREFIX + "offset") or record.offset),
                key=record.key,
                value=record.value,
                headers=original_headers(headers),
            )
        )
    report.chosen = len(events)
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=horizon)
    report.requeued = await queue.requeue(events, deadline=deadline)
    report.skipped = report.chosen - report.requeued
    return report


async def _partitions(kafka: KafkaConnection, topic: str) -> list[int]:
    """The topic's partition numbers; none when it does not exist (nothing dead-lettered yet).

    Asked of the admin API: a consumer's metadata only covers topics it already follows.
    """
    admin = create_admin(kafka)
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            return []
        (described,) = await admin.describe_topics([topic])
        return sorted(p["partition"] for p in described["partitions"])
    finally:
        await admin.close()


def _coordinates(headers: list[tuple[str, bytes | None]]) -> str:
    # What the copier used as the id of an event that came without ce_id.
    p = DLQ_HEADER_PREFIX
    return ":".join(header_text(headers, p + n) or "?" for n in ("topic", "partition", "offset"))

"""Copy routed events from the delivery topics into the delivery queue.

The Kafka Connect exactly-once sink pattern: each batch of records and the offsets after it
are written to PostgreSQL in one transaction, and on every partition assignment the consumer
seeks to the offsets stored there (not to the group's committed ones). A crash before the
commit copies the batch again; after it, never. The offsets are also committed to Kafka after
each batch, only so that lag shows on the dashboard and in Kafka's own tools.

The copy never waits for an endpoint, so no subscriber can hold a partition back.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition

from lintas.kafka import KafkaConnection, create_consumer
from lintas.schemas import DeserializationError

from .._records import RecordDecoder, json_body, read_envelope
from .queue import DeadReason, DeliveryQueue, QueuedEvent

__all__ = ["DeliveryCopier", "delivery_topic", "subscriber_of", "to_queued"]

log = logging.getLogger(__name__)

DELIVER_PREFIX = "lintas.deliver."
_POLL_MS = 500
_MAX_BACKOFF = 30.0


def delivery_topic(subscriber: str) -> str:
    """``lintas.deliver.<subscriber>``: the subscriber's routed events."""
    return DELIVER_PREFIX + subscriber


def subscriber_of(topic: str) -> str:
    """The subscriber a delivery topic belongs to."""
    if not topic.startswith(DELIVER_PREFIX):
        raise ValueError(f"{topic!r} is not a delivery topic")
    return topic[len(DELIVER_PREFIX) :]


class _SeekToStored(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, copier: DeliveryCopier) -> None:
        self._copier = copier

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Wait for the batch being copied: its offsets must be stored before another
        # deliverer reads them on assignment.
        async with self._copier.lock:
            pass

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self._copier.seek_to_stored(assigned)


class DeliveryCopier:
    """Reads the webhook subscribers' delivery topics into the queue.

    Args:
        kafka: the connection (Read on the delivery topics, on the group).
        queue: where the events go.
        decoder: turns record values into records (writer schema from the registry).
        group_id: the consumer group; also the key of the stored offsets.
        batch_max: records per transaction.
        horizon: seconds after queueing when an undelivered event is given up.

    The dispatcher learns of new events from the queue's NOTIFY (see ``_lease.py``), so it
    need not run in this process.
    """

    def __init__(
        self,
        kafka: KafkaConnection,
        queue: DeliveryQueue,
        decoder: RecordDecoder,
        *,
        group_id: str,
        batch_max: int,
        horizon: float,
    ) -> None:
        self._kafka = kafka.with_client_id("lintas-deliver")
        self._queue = queue
        self._decoder = decoder
        self._group_id = group_id
        self._batch_max = batch_max
        self._horizon = dt.timedelta(seconds=horizon)
        self._consumer: Any = None
        self._topics: frozenset[str] = frozenset()
        self.lock = asyncio.Lock()
        self.copied = 0
        """Records copied since start (duplicates of queued events included)."""

    async def start(self) -> None:
        self._consumer = create_consumer(
            self._kafka,
            group_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self._batch_max,
        )
        await self._consumer.start()

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), 10)

    def set_subscribers(self, subscribers: Iterable[str]) -> None:
        """Read the delivery topics of exactly these subscribers (a rebalance follows)."""
        topics = frozenset(delivery_topic(s) for s in subscribers)
        if topics == self._topics or self._consumer is None:
            return
        self._topics = topics
        log.info("copying from %d delivery topic(s): %s", len(topics), ", ".join(sorted(topics)))
        if topics:
            self._consumer.subscribe(sorted(topics), listener=_SeekToStored(self))
        else:
            self._consumer.unsubscribe()

    async def seek_to_stored(
        self, partitions: Iterable[TopicPartition], *, rewind: bool = False
    ) -> None:
        """Seek each partition to the offset stored with the queue.

        Args:
            partitions: the partitions to position.
            rewind: also reposition partitions without a stored offset (after a failed
                copy: the consumer has moved past records that were never stored), to the
                group's committed offset or, without one, the beginning.
        """
        tps = list(partitions)
        stored = await self._queue.stored_offsets((tp.topic, tp.partition) for tp in tps)
        for tp in tps:
            offset = stored.get((tp.topic, tp.partition))
            if offset is not None:
                self._consumer.seek(tp, offset)
            elif rewind:
                committed = await self._consumer.committed(tp)
                if committed is None:
                    await self._consumer.seek_to_beginning(tp)
                else:
                    self._consumer.seek(tp, committed)
        # On assignment, partitions without a stored offset start where the group's committed
        # offset or auto_offset_reset (earliest: a new subscriber gets everything routed to
        # it) says.

    async def run(self) -> None:
        """Copy until cancelled; a failing database or registry is waited out, never skipped."""
        backoff = 0.5
        while True:
            if not self._topics:
                await asyncio.sleep(_POLL_MS / 1000)
                continue
            try:
                batches = await self._consumer.getmany(
                    timeout_ms=_POLL_MS, max_records=self._batch_max
                )
                if batches:
                    async with self.lock:
                        await self._copy(batches)
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Nothing was stored: go back to the stored offsets and try the same records
                # again once the database, the registry or Kafka is back.
                log.warning("copying delivery records failed, retrying in %.1f s: %r", backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
                with contextlib.suppress(Exception):
                    await self.seek_to_stored(self._consumer.assignment(), rewind=True)

    async def _copy(self, batches: Mapping[TopicPartition, list[Any]]) -> None:
        events: list[QueuedEvent] = []
        offsets: dict[tuple[str, int], int] = {}
        commit: dict[TopicPartition, int] = {}
        for tp, records in batches.items():
            if not records:
                continue
            subscriber = subscriber_of(tp.topic)
            for record in records:
                events.append(await self._event(subscriber, record))
            offsets[(tp.topic, tp.partition)] = records[-1].offset + 1
            commit[tp] = records[-1].offset + 1
        if not offsets:
            return
        deadline = dt.datetime.now(dt.UTC) + self._horizon
        await self._queue.enqueue(events, offsets, deadline=deadline)
        self.copied += len(events)
        try:
            await self._consumer.commit(commit)
        except Exception as exc:  # informational only: PostgreSQL holds the real position
            log.debug("committing offsets to Kafka failed: %r", exc)

    async def _event(self, subscriber: str, record: Any) -> QueuedEvent:
        return await to_queued(
            subscriber,
            self._decoder,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            headers=list(record.headers or ()),
        )


async def to_queued(
    subscriber: str,
    decoder: RecordDecoder,
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes | None]],
) -> QueuedEvent:
    """A delivery record as a queue row: its JSON body, or why it has none.

    Raises:
        lintas.schemas.registry.RegistryUnavailable: the registry cannot be reached (the
            record is fine: the caller tries again later).
    """
    envelope = read_envelope(headers)
    body: bytes | None = None
    reason: DeadReason | None = None
    error: str | None = None
    coordinates = f"{topic}:{partition}:{offset}"
    if envelope.id is None:
        reason, error = DeadReason.UNDECODABLE, "no ce_id header: the event has no id"
    else:
        try:
            data = await decoder.decode(value, topic=topic, partition=partition, offset=offset)
            body = json_body(envelope, data)
        except DeserializationError as exc:
            reason, error = DeadReason.UNDECODABLE, str(exc)
    ordering = key.decode("utf-8", errors="replace") if key else envelope.subject
    return QueuedEvent(
        subscriber=subscriber,
        # Without an id the event cannot be deduplicated; its coordinates stand in.
        event_id=envelope.id or coordinates,
        event_type=envelope.type,
        # Keyless events have no order to keep: each gets a lane of its own.
        ordering_key=ordering or f"(no key) {envelope.id or coordinates}",
        topic=topic,
        partition=partition,
        offset=offset,
        key=key,
        value=value,
        headers=headers,
        body=body,
        dead_reason=reason,
        error=error,
    )

"""Every place the SDK touches aiokafka, each wait bounded.

aiokafka's producer never gives up on its own when the broker is gone and idempotence is
on: batches are retried forever (they do not expire with idempotence), ``start`` loops on
InitProducerId, and ``stop`` waits for the accumulator to drain, which never happens
(aio-libs/aiokafka#1101). So every call here has a deadline, and :meth:`KafkaLink.close`
falls back to taking the producer apart when ``stop`` overruns. That uses a few private
attributes of aiokafka 0.14, all of them here and nowhere else.

One :class:`KafkaLink` is one aiokafka producer. After a send timed out it is never used
again: a batch already on the wire cannot be recalled, so the records are spooled and a new
link (new producer id, fresh sequence numbers) forwards them; a late copy from the old one
carries the same event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    CorruptRecordException,
    InvalidTopicError,
    KafkaConnectionError,
    KafkaError,
    MessageSizeTooLargeError,
    ProducerClosed,
    RecordListTooLargeError,
    TopicAuthorizationFailedError,
    UnsupportedForMessageFormatError,
)

from lintas.kafka import KafkaConnection, authentication_refused, create_producer

from ._record import Record
from .exceptions import NotAuthenticated, NotAuthorized, TopicNotFound

__all__ = ["KafkaLink", "Part", "Unreachable", "classify", "murmur2"]

log = logging.getLogger("lintas.producers")

# Flights this small go through aiokafka's send(), so concurrent single-event calls (the
# gateway's) share batches; bigger ones build their own batches per partition, which
# skips aiokafka's per-message futures and costs about half as much per record.
_BATCH_FROM = 16

# How long a producer being cancelled while it connects may take to close.
_CANCEL_CLOSE_S = 1.0

# Errors that concern the record, not the connection: retrying the same bytes fails again.
_REFUSED: tuple[type[KafkaError], ...] = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    InvalidTopicError,
    CorruptRecordException,
    UnsupportedForMessageFormatError,
)


_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash of a key, as aiokafka's ``partitioner.murmur2`` computes it.

    The same function, written to do less work per byte (the words are unpacked at once,
    and the redundant masks are gone): it runs once per record, and aiokafka's version
    costs a microsecond more on a NIK. A unit test compares both on random keys.
    """
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    words = length >> 2
    if words:
        for k in struct.unpack_from(f"<{words}I", data):
            k = (k * _M) & _MASK
            k ^= k >> 24
            k = (k * _M) & _MASK
            h = ((h * _M) & _MASK) ^ k
    rest = length & 3
    if rest:
        tail = length & ~3
        if rest >= 3:
            h ^= data[tail + 2] << 16
        if rest >= 2:
            h ^= data[tail + 1] << 8
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


class Unreachable(Exception):
    """Internal: the broker did not answer in time (or refused the connection)."""


@dataclass(slots=True)
class Part:
    """One aiokafka future and the records it stands for (positions in the caller's list).

    A batch's future resolves with the batch's base offset: the record at position ``k``
    of ``indexes`` got offset ``base + k``.
    """

    future: asyncio.Future[Any]
    indexes: list[int]


def classify(exc: BaseException) -> str:
    """``denied``, ``refused`` (both final, per record) or ``retry`` (spool and reconnect)."""
    if isinstance(exc, TopicAuthorizationFailedError | ClusterAuthorizationFailedError):
        return "denied"
    if isinstance(exc, _REFUSED):
        return "refused"
    return "retry"


class KafkaLink:
    """One aiokafka producer: started, fed and closed within deadlines.

    Args:
        conn: where the brokers are and how to authenticate.
        options: aiokafka producer options (acks=all and idempotence are the default of
            :func:`lintas.kafka.create_producer`).
    """

    def __init__(self, conn: KafkaConnection, options: dict[str, Any]) -> None:
        self._conn = conn
        self._options = options
        self._producer: Any = None
        self.principal = f"User:{conn.username}"
        self.usable = False
        """False once a send through it timed out: never reuse it, see the module doc."""

    async def start(self, timeout: float) -> None:
        """Connect and obtain a producer id.

        Raises:
            Unreachable: the broker did not answer within ``timeout``.
            NotAuthorized: the principal may not produce idempotently at all.
        """
        self._producer = create_producer(self._conn, **self._options)
        try:
            await asyncio.wait_for(self._producer.start(), timeout)
        except ClusterAuthorizationFailedError as exc:
            await self.close(timeout)
            raise NotAuthorized(None, self.principal) from exc
        except (TimeoutError, KafkaError, OSError) as exc:
            await self.close(timeout)
            if isinstance(exc, KafkaConnectionError) and await authentication_refused(
                self._conn, timeout
            ):
                raise NotAuthenticated(self.principal) from exc
            reason = "no answer" if isinstance(exc, TimeoutError) else str(exc) or repr(exc)
            raise Unreachable(f"{self._conn.bootstrap}: {reason}") from exc
        except asyncio.CancelledError:
            # Stopping while connecting: do not leave a half-started producer behind, but
            # do not hold up the cancellation for long either.
            await self.close(min(timeout, _CANCEL_CLOSE_S))
            raise
        self.usable = True

    async def ensure_topics(self, topics: Iterable[str], timeout: float) -> None:
        """Make sure the metadata of ``topics`` is known (asked once per topic per link).

        Raises:
            Unreachable: no metadata answer within ``timeout``.
            NotAuthorized: the principal may not see a topic.
            TopicNotFound: the broker answered and has no such topic.
        """
        client = self._producer.client
        cluster = client.cluster
        missing = [t for t in topics if cluster.partitions_for_topic(t) is None]
        if not missing:
            return
        for topic in missing:
            client.add_topic(topic)
        try:
            updated = await asyncio.wait_for(client.force_metadata_update(), timeout)
        except TimeoutError as exc:
            raise Unreachable("no metadata answer") from exc
        if not updated:
            raise Unreachable("the metadata request failed")
        for topic in missing:
            if cluster.partitions_for_topic(topic) is not None:
                continue
            # Stop tracking it, or every later metadata refresh asks for it again.
            client._topics.discard(topic)
            if topic in cluster.unauthorized_topics:
                raise NotAuthorized(topic, self.principal)
            raise TopicNotFound(topic)

    async def enqueue(self, records: Sequence[Record], parts: list[Part]) -> None:
        """Hand ``records`` to aiokafka in order, appending a :class:`Part` per future.

        ``parts`` grows as records are handed over, so when this is interrupted (deadline,
        error) the caller knows exactly which records may be on their way.
        """
        producer = self._producer
        cluster = producer.client.cluster
        partitions: dict[str, list[int]] = {}

        def partition_of(topic: str, key: bytes) -> int:
            # Same choice as aiokafka's DefaultPartitioner (and Java's): murmur2 of the key
            # over the sorted partition ids, so a key lands on one partition whichever path
            # (direct, batch, forwarder) sends it.
            ids = partitions.get(topic)
            if ids is None:
                known: set[int] = cluster.partitions_for_topic(topic) or set()
                ids = partitions[topic] = sorted(known)
                if not ids:
                    raise Unreachable(f"no partitions known for {topic}")
            return ids[(murmur2(key) & 0x7FFFFFFF) % len(ids)]

        if len(records) < _BATCH_FROM:
            for index, record in enumerate(records):
                future = await producer.send(
                    record.topic,
                    record.value,
                    key=record.key,
                    partition=partition_of(record.topic, record.key),
                    headers=record.headers,
                )
                parts.append(Part(future, [index]))
            return

        open_batches: dict[tuple[str, int], tuple[Any, list[int]]] = {}
        for index, record in enumerate(records):
            tp = (record.topic, partition_of(record.topic, record.key))
            entry = open_batches.get(tp)
            if entry is None:
                entry = open_batches[tp] = (producer.create_batch(), [])
            if (
                entry[0].append(
                    key=record.key, value=record.value, timestamp=None, headers=record.headers
                )
                is None
            ):
                # Full: submit it, and start the next batch of this partition with the record
                # (an empty batch always takes one record, whatever its size).
                entry[0].close()
                future = await producer.send_batch(entry[0], tp[0], partition=tp[1])
                parts.append(Part(future, entry[1]))
                entry = open_batches[tp] = (producer.create_batch(), [])
                entry[0].append(
                    key=record.key, value=record.value, timestamp=None, headers=record.headers
                )
            entry[1].append(index)
        for (topic, partition), (batch, indexes) in open_batches.items():
            # Closed, the batch is sent at once instead of waiting out linger_ms for records
            # that will not come: the call is complete.
            batch.close()
            future = await producer.send_batch(batch, topic, partition=partition)
            parts.append(Part(future, indexes))

    async def close(self, timeout: float) -> bool:
        """Stop the producer within ``timeout`` (twice, at worst); whether it stopped cleanly.

        A clean stop delivers what is queued. When the broker is gone that never ends, so
        after ``timeout`` the producer is taken apart: pending futures fail with
        ``ProducerClosed``, the sender task is cancelled and the connections are closed.
        """
        producer, self._producer = self._producer, None
        self.usable = False
        if producer is None:
            return True
        try:
            await asyncio.wait_for(producer.stop(), timeout)
            return True
        except Exception as exc:  # TimeoutError, or whatever stop() raised on the way
            log.warning(
                "Kafka producer did not stop within %.1f s (%r); closing it forcibly",
                timeout,
                exc,
            )
        await _take_apart(producer, timeout)
        return False


async def _take_apart(producer: Any, timeout: float) -> None:
    # aiokafka 0.14 internals (see the module doc): fail what is queued so that the
    # accumulator's close() inside the abandoned stop() finishes, then stop the sender.
    with contextlib.suppress(Exception):
        producer._message_accumulator.fail_all(ProducerClosed())
    sender = getattr(producer, "_sender", None)
    task = getattr(sender, "sender_task", None)
    if task is not None and not task.done():
        task.cancel()
        # Its cancellation handler awaits produce requests in flight, each bounded by
        # request_timeout_ms; do not wait that long.
        await asyncio.wait({task}, timeout=timeout)
    try:
        await asyncio.wait_for(producer.client.close(), timeout)
    except Exception as exc:  # already closed, or connections that will not close
        log.warning("Kafka connections did not close cleanly: %r", exc)

"""Write given-up events to their subscriber's dead-letter topic.

A row is stamped ``dead_lettered_at`` only after the broker acknowledged its dead letter, so a
crash in between writes it again: at least once, never lost. ``lintas deliver redeliver``
takes dead letters back into the queue (see :mod:`.redeliver`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from lintas.kafka import KafkaConnection, create_producer

from .._dlq import DeadLetterTopics, dead_letter_headers, dlq_topic
from .queue import DeliveryQueue

__all__ = ["DeadLetterWriter"]

log = logging.getLogger(__name__)

_BATCH = 200
_IDLE_S = 5.0


class DeadLetterWriter:
    """Moves dead rows of the queue to ``lintas.deliver.<subscriber>.dlq``.

    Args:
        kafka: the connection (Write on the dead-letter topics, Create to make them).
        queue: the delivery queue.
        topics: creates the dead-letter topics when needed.
    """

    def __init__(self, kafka: KafkaConnection, queue: DeliveryQueue, topics: DeadLetterTopics):
        self._kafka = kafka.with_client_id("lintas-deliver-dlq")
        self._queue = queue
        self._topics = topics
        self._producer: Any = None
        self._wake = asyncio.Event()
        self.written = 0
        """Dead letters written since start."""

    async def start(self) -> None:
        self._producer = create_producer(self._kafka)
        await self._producer.start()

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 10)

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Write dead letters as they come, until cancelled."""
        backoff = 1.0
        while True:
            try:
                await self.write_pending()
                backoff = 1.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("writing dead letters failed, retrying in %.0f s: %r", backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), _IDLE_S)
            self._wake.clear()

    async def write_pending(self) -> int:
        """Write every dead row not yet written; returns how many were written."""
        total = 0
        while True:
            rows = await self._queue.dead_rows(limit=_BATCH)
            if not rows:
                return total
            await self._topics.ensure({dlq_topic(r.subscriber) for r in rows})
            futures = []
            for row in rows:
                headers = dead_letter_headers(
                    row.headers,
                    reason=row.dead_reason,
                    message=row.last_error,
                    subscriber=row.subscriber,
                    attempts=row.attempts,
                    topic=row.topic,
                    partition=row.partition,
                    offset=row.offset,
                    status=row.last_status,
                )
                futures.append(
                    await self._producer.send(
                        dlq_topic(row.subscriber), value=row.value, key=row.key, headers=headers
                    )
                )
            # Awaited together: the batch costs one round trip, not one per dead letter.
            await asyncio.gather(*futures)
            await self._queue.mark_dead_lettered([r.id for r in rows])
            for row in rows:
                log.warning(
                    "event %s for %s dead-lettered (%s): %s",
                    row.event_id,
                    row.subscriber,
                    row.dead_reason,
                    row.last_error,
                )
            self.written += len(rows)
            total += len(rows)

"""Copy committed directory changes from the outbox table to the ``lintas.directory`` topic.

Every change writes its entity's new snapshot to ``lintas.dir_changes`` in the transaction
that makes it; this module publishes the unpublished rows in ``seq`` order, keyed by entity,
and marks them. The topic is compacted, so it converges on the latest snapshot per entity
and a reader that starts from the beginning sees the whole directory. If Kafka is down the
rows wait; the next change, ``lintas directory publish`` or a service's publisher loop sends
them. An advisory lock keeps one publisher at a time, so order per entity holds.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson

from lintas.kafka import KafkaConnection, create_producer
from lintas.topics import DIRECTORY_TOPIC

__all__ = ["ChangePublisher", "encode_snapshot"]

log = logging.getLogger(__name__)

# Any constant works; it only has to differ from the migration lock and be shared.
_PUBLISH_LOCK = 0x4C494E544153 + 1
_BATCH = 500


def encode_snapshot(snapshot: Any) -> bytes | None:
    return None if snapshot is None else orjson.dumps(snapshot)


class ChangePublisher:
    """Publishes the outbox; its Kafka producer is started on first use and kept."""

    def __init__(
        self, kafka: KafkaConnection, *, topic: str = DIRECTORY_TOPIC, timeout: float = 10.0
    ) -> None:
        self._kafka = kafka.with_client_id("lintas-directory")
        self._topic = topic
        self._timeout = timeout
        self._producer: Any = None

    async def _ensure_producer(self) -> Any:
        if self._producer is None:
            producer = create_producer(self._kafka)
            try:
                await asyncio.wait_for(producer.start(), self._timeout)
            except BaseException:
                await self._close(producer)
                raise
            self._producer = producer
        return self._producer

    async def _close(self, producer: Any) -> None:
        # aiokafka's stop() can hang when the broker is gone; never let it block the caller.
        try:
            await asyncio.wait_for(producer.stop(), self._timeout)
        except (TimeoutError, Exception):
            log.warning("directory publisher: Kafka producer did not stop cleanly")

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await self._close(producer)

    async def publish_pending(self, pool: Any) -> int:
        """Publish every unpublished change; return how many were published.

        Raises:
            TimeoutError, KafkaError: Kafka did not take the batch; the rows stay pending.
        """
        total = 0
        while True:
            published = await self._publish_batch(pool)
            total += published
            if published < _BATCH:
                return total

    async def _publish_batch(self, pool: Any) -> int:
        async with pool.acquire() as conn, conn.transaction():
            # Wait for a concurrent publisher rather than skip: it may have read its rows
            # before our change committed, so skipping could leave ours unpublished.
            await conn.execute(f"SET LOCAL lock_timeout = '{int(self._timeout * 1000)}ms'")
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _PUBLISH_LOCK)
            rows = await conn.fetch(
                "SELECT seq, entity_key, snapshot FROM lintas.dir_changes "
                "WHERE published_at IS NULL ORDER BY seq LIMIT $1",
                _BATCH,
            )
            if not rows:
                return 0
            try:
                producer = await self._ensure_producer()
                # One bound over metadata waits (a missing topic blocks send() for the
                # client's request timeout) and acknowledgements.
                await asyncio.wait_for(self._send_all(producer, rows), self._timeout)
            except BaseException:
                # A producer that timed out may still deliver later; start clean next time.
                await self.stop()
                raise
            await conn.execute(
                "UPDATE lintas.dir_changes SET published_at = now() WHERE seq = ANY($1::bigint[])",
                [row["seq"] for row in rows],
            )
            return len(rows)

    async def _send_all(self, producer: Any, rows: list[Any]) -> None:
        futures = [
            await producer.send(
                self._topic,
                key=row["entity_key"].encode(),
                value=encode_snapshot(row["snapshot"]),
                headers=[("lintas_seq", str(row["seq"]).encode())],
            )
            for row in rows
        ]
        await asyncio.gather(*futures)

"""Source: the Kafka cluster itself, through the admin API and a group-less consumer.

Consumer lag, webhook delivery queues, the store's backlog and broker health all come from
offsets: a group's committed offset against the partition's end offset. The admin client
has no ListOffsets call in aiokafka, so a consumer without a group (it commits nothing and
joins nothing) asks for end offsets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from lintas.kafka import KafkaConnection, create_admin, create_consumer

__all__ = ["KafkaInspector"]

# A dashboard refresh must not hang on a sick broker: every call gets this long.
_CALL_TIMEOUT_S = 5.0


class KafkaInspector:
    """Read-only questions to the cluster: topics, partitions, offsets, groups.

    Usage::

        async with KafkaInspector(conn) as kafka:
            lags = await kafka.group_lags()
    """

    def __init__(self, conn: KafkaConnection) -> None:
        self._conn = conn.with_client_id("lintas-portal")
        self._admin: Any = None
        self._consumer: Any = None

    async def start(self) -> None:
        self._admin = create_admin(self._conn, request_timeout_ms=int(_CALL_TIMEOUT_S * 1000))
        self._consumer = create_consumer(self._conn, group_id=None)
        try:
            await asyncio.wait_for(self._admin.start(), _CALL_TIMEOUT_S * 2)
            await asyncio.wait_for(self._consumer.start(), _CALL_TIMEOUT_S * 2)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        admin, consumer, self._admin, self._consumer = self._admin, self._consumer, None, None
        if consumer is not None:
            await consumer.stop()
        if admin is not None:
            await admin.close()

    async def __aenter__(self) -> KafkaInspector:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _started(self) -> tuple[Any, Any]:
        if self._admin is None or self._consumer is None:
            raise RuntimeError("KafkaInspector is not started")
        return self._admin, self._consumer

    async def ping(self) -> tuple[float, int]:
        """Latency of a metadata request in milliseconds, and the number of brokers."""
        admin, _ = self._started()
        started = time.perf_counter()
        cluster = await asyncio.wait_for(admin.describe_cluster(), _CALL_TIMEOUT_S)
        return (time.perf_counter() - started) * 1000, len(cluster["brokers"])

    async def topics(self) -> set[str]:
        admin, _ = self._started()
        return set(await asyncio.wait_for(admin.list_topics(), _CALL_TIMEOUT_S))

    async def partitions(self, topics: Iterable[str]) -> list[Any]:
        """Every partition of the topics that exist (missing topics are left out)."""
        from aiokafka.structs import TopicPartition

        names = sorted(set(topics))
        if not names:
            return []
        admin, _ = self._started()
        described = await asyncio.wait_for(admin.describe_topics(names), _CALL_TIMEOUT_S)
        return [
            TopicPartition(t["topic"], p["partition"])
            for t in described
            if t["error_code"] == 0
            for p in t["partitions"]
        ]

    async def end_offsets(self, partitions: list[Any]) -> dict[Any, int]:
        if not partitions:
            return {}
        _, consumer = self._started()
        ends = await asyncio.wait_for(consumer.end_offsets(partitions), _CALL_TIMEOUT_S)
        return {tp: int(offset) for tp, offset in ends.items()}

    async def record_count(self, topics: Iterable[str]) -> int:
        """Records ever written to the topics (end offsets; retention does not lower it)."""
        return sum((await self.end_offsets(await self.partitions(topics))).values())

    async def committed(self) -> dict[str, dict[Any, int]]:
        """Each consumer group's committed offsets (groups that commit to Kafka)."""
        admin, _ = self._started()
        groups = await asyncio.wait_for(admin.list_consumer_groups(), _CALL_TIMEOUT_S)
        result: dict[str, dict[Any, int]] = {}
        for group in sorted({g[0] for g in groups}):
            offsets = await asyncio.wait_for(
                admin.list_consumer_group_offsets(group), _CALL_TIMEOUT_S
            )
            result[group] = {tp: int(o.offset) for tp, o in offsets.items() if o.offset >= 0}
        return result

    async def lags(self) -> dict[str, dict[Any, int]]:
        """Per group and partition: records not yet consumed (end offset - committed)."""
        committed = await self.committed()
        ends = await self.end_offsets(sorted({tp for c in committed.values() for tp in c}))
        return {
            group: {tp: max(ends.get(tp, off) - off, 0) for tp, off in offsets.items()}
            for group, offsets in committed.items()
        }

    async def last_timestamps(self, positions: dict[Any, int]) -> dict[Any, int]:
        """Timestamp (ms) of the record just before each position, where there is one.

        One short-lived consumer serves all partitions: seeking the shared consumer would
        race other refreshes.
        """
        wanted = {tp: off for tp, off in positions.items() if off > 0}
        if not wanted:
            return {}
        consumer = create_consumer(self._conn, group_id=None)
        await asyncio.wait_for(consumer.start(), _CALL_TIMEOUT_S)
        found: dict[Any, int] = {}
        try:
            consumer.assign(list(wanted))
            for tp, off in wanted.items():
                consumer.seek(tp, off - 1)
            deadline = time.monotonic() + _CALL_TIMEOUT_S
            while len(found) < len(wanted) and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=500, max_records=500)
                for tp, records in batch.items():
                    if records and tp not in found:
                        found[tp] = int(records[0].timestamp)
                        consumer.pause(tp)
        finally:
            await consumer.stop()
        return found

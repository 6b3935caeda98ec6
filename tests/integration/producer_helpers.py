"""Helpers of the producer SDK's integration tests: read a topic back, whole."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition

from lintas.kafka import KafkaConnection, create_consumer


@dataclass(frozen=True)
class Read:
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: dict[str, bytes]

    @property
    def event_id(self) -> str:
        return self.headers["ce_id"].decode()


async def read_topic(
    conn: KafkaConnection, topic: str, *, partitions: int = 3, timeout_ms: int = 5000
) -> list[Read]:
    """Every record of ``topic`` (of ``partitions`` partitions) up to its end offsets now."""
    consumer = create_consumer(conn, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[Read] = []

        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in tps])

        while await behind():
            batch = await consumer.getmany(*tps, timeout_ms=timeout_ms)
            if not batch:
                positions = {tp.partition: await consumer.position(tp) for tp in tps}
                raise AssertionError(f"reading {topic} stalled at {positions}, ends {ends}")
            for records in batch.values():
                for r in records:
                    out.append(Read(r.partition, r.offset, r.key, r.value, dict(r.headers)))
        return out
    finally:
        await consumer.stop()


def first_seen_order(reads: list[Read]) -> dict[bytes, list[str]]:
    """Per key, the event ids in log order, each at its first occurrence only."""
    seen: set[str] = set()
    order: dict[bytes, list[str]] = defaultdict(list)
    for read in sorted(reads, key=lambda r: (r.partition, r.offset)):
        if read.event_id not in seen:
            seen.add(read.event_id)
            order[read.key].append(read.event_id)
    return order


def duplicates_are_identical(reads: list[Read]) -> dict[str, Any]:
    """Event ids seen more than once, checking every copy has the same key and value."""
    copies: dict[str, list[Read]] = defaultdict(list)
    for read in reads:
        copies[read.event_id].append(read)
    dupes = {eid: rs for eid, rs in copies.items() if len(rs) > 1}
    for eid, rs in dupes.items():
        assert len({(r.key, r.value) for r in rs}) == 1, f"copies of {eid} differ"
    return {eid: len(rs) for eid, rs in dupes.items()}

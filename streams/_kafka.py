"""Small Kafka look-ups shared by the dead-letter tools and the test helpers."""

from __future__ import annotations

import asyncio

from lintas.kafka import KafkaConnection, create_admin

__all__ = ["partition_ids"]


async def partition_ids(conn: KafkaConnection, topic: str, *, wait_s: float = 0.0) -> list[int]:
    """The partition numbers of ``topic``; empty when it does not exist after ``wait_s``."""
    admin = create_admin(conn)
    await admin.start()
    try:
        deadline = asyncio.get_running_loop().time() + wait_s
        while True:
            [described] = await admin.describe_topics([topic])
            if described["error_code"] == 0 and described["partitions"]:
                return sorted(p["partition"] for p in described["partitions"])
            if asyncio.get_running_loop().time() >= deadline:
                return []
            await asyncio.sleep(0.5)
    finally:
        await admin.close()

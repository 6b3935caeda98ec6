"""The broker is real: idempotent produce, ordered consume, consumer-group rebalances."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from aiokafka import TopicPartition

from lintas.kafka import KafkaConnection, create_consumer, create_producer


async def test_10k_messages_round_trip_in_order_per_key(
    kafka_conn: KafkaConnection, topic_factory, scale: float
) -> None:
    topic = await topic_factory(partitions=3)
    count = int(10_000 * scale)
    keys = [f"3273{k:012d}".encode() for k in range(50)]
    producer = create_producer(kafka_conn, linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, key=keys[i % len(keys)], value=str(i).encode())
            for i in range(count)
        ]
        await producer.flush()
        metadata = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    assert {m.partition for m in metadata} == {0, 1, 2}

    consumer = create_consumer(kafka_conn, topic, group_id=f"g-{topic}")
    await consumer.start()
    seen: dict[bytes, list[int]] = defaultdict(list)
    total = 0
    try:
        while total < count:
            batch = await consumer.getmany(timeout_ms=2000)
            assert batch, f"consumer stalled after {total} of {count} messages"
            for records in batch.values():
                for record in records:
                    seen[record.key].append(int(record.value))
                    total += 1
    finally:
        await consumer.stop()
    assert total == count
    all_values = sorted(v for values in seen.values() for v in values)
    assert all_values == list(range(count)), "a message was lost or duplicated"
    for key, values in seen.items():
        assert values == sorted(values), f"key {key!r} was consumed out of order"


async def test_consumer_group_rebalances_when_a_member_leaves(
    kafka_conn: KafkaConnection, topic_factory
) -> None:
    topic = await topic_factory(partitions=4)
    group = f"rebalance-{topic}"
    opts = dict(group_id=group, session_timeout_ms=6000, heartbeat_interval_ms=500)
    first = create_consumer(kafka_conn, topic, **opts)
    second = create_consumer(kafka_conn, topic, **opts)
    await first.start()
    await second.start()
    try:

        async def assignment_settles(*consumers, want: list[int]) -> None:
            for _ in range(200):
                await asyncio.gather(*(c.getmany(timeout_ms=100) for c in consumers))
                sizes = sorted(len(c.assignment()) for c in consumers)
                if sizes == want:
                    return
            raise AssertionError(f"assignment never settled to {want}: {sizes}")

        await assignment_settles(first, second, want=[2, 2])
        both = first.assignment() | second.assignment()
        assert both == {TopicPartition(topic, p) for p in range(4)}
        await second.stop()
        await assignment_settles(first, want=[4])
    finally:
        await first.stop()
        await second.stop()


async def test_auto_creation_is_off(kafka_conn: KafkaConnection) -> None:
    from aiokafka.errors import KafkaTimeoutError, UnknownTopicOrPartitionError

    producer = create_producer(kafka_conn, request_timeout_ms=3000)
    await producer.start()
    try:
        try:
            await asyncio.wait_for(producer.send_and_wait("never.created.topic", b"x"), 15)
        except (KafkaTimeoutError, UnknownTopicOrPartitionError, TimeoutError):
            pass
        else:
            raise AssertionError("the broker auto-created a topic")
    finally:
        await producer.stop()


async def test_wrong_password_is_refused(kafka_conn: KafkaConnection) -> None:
    from aiokafka.errors import KafkaConnectionError

    bad = KafkaConnection(
        bootstrap=kafka_conn.bootstrap, username=kafka_conn.username, password="not-the-password"
    )
    producer = create_producer(bad)
    try:
        await producer.start()
    except KafkaConnectionError:
        pass
    else:
        raise AssertionError("a wrong SCRAM password was accepted")
    finally:
        await producer.stop()

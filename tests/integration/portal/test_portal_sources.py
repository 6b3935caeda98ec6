"""The dashboard's Kafka sources on the real broker, and the first operator ``lintas up`` makes."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka.structs import TopicPartition

from lintas.kafka import KafkaConnection, create_consumer, create_producer
from lintas.portal import PortalUsers, Role, SignInFailed
from lintas.portal.bootstrap import ADMIN_NAME, admin_password_file, ensure_admin
from lintas.portal.data import DeadLetterWindow, KafkaInspector, TopicFollower, TrafficWindow
from lintas.portal.data.pipeline import lag_panel
from lintas.postgres import create_pool
from lintas.streams.metrics import MetricRecord, Outcome, encode_metric

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _wait(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def test_metrics_follower_fills_the_traffic_window(
    kafka_conn: KafkaConnection, topic_factory: Callable[..., Any]
) -> None:
    from zoneinfo import ZoneInfo

    topic = await topic_factory("test.portal.metrics.")
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    producer = create_producer(kafka_conn)
    await producer.start()
    try:
        # Two workers' shares of the last minute, and an older window of one of them.
        for start, worker, count in ((now - dt.timedelta(minutes=1), "w1", 40),
                                     (now - dt.timedelta(minutes=1), "w2", 2),
                                     (now - dt.timedelta(minutes=5), "w1", 7)):  # fmt: skip
            record = MetricRecord(
                window_start=start, window_end=start + dt.timedelta(minutes=1), opd="dukcapil",
                event_type="dukcapil.kematian_dicatat.v1", outcome=Outcome.ACCEPTED,
                count=count, worker=worker,
            )  # fmt: skip
            key, value = encode_metric(record)
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()
    window = TrafficWindow(ZoneInfo("Asia/Jakarta"))
    follower = TopicFollower(kafka_conn, topic, horizon=dt.timedelta(days=1), handle=window.handle)
    follower.start()
    try:
        await asyncio.wait_for(follower.caught_up.wait(), 30)
        panel = window.panel()
        assert panel.data is not None
        assert panel.data.total_24h == 49
        assert panel.data.last_minute_total == 42
        [row] = panel.data.by_type_24h
        assert (row.opd, row.accepted, row.dead_lettered) == ("dukcapil", 49, 0)
    finally:
        await follower.stop()


async def test_dead_letter_follower_counts_reasons_from_headers(
    kafka_conn: KafkaConnection, topic_factory: Callable[..., Any]
) -> None:
    topic = await topic_factory("test.portal.dlq.")
    producer = create_producer(kafka_conn)
    await producer.start()
    try:
        for reason, opd in (("invalid_nik", "dukcapil"), ("invalid_nik", "dinkes"),
                            ("undecodable", "dukcapil")):  # fmt: skip
            headers = [("lintas.dlq.reason", reason.encode()), ("lintas.dlq.opd", opd.encode())]
            # The value is never read: personal data stays in the topic.
            await producer.send_and_wait(
                topic, b"\x00garbage", key=b"3273011508900001", headers=headers
            )
    finally:
        await producer.stop()
    window = DeadLetterWindow()
    follower = TopicFollower(
        kafka_conn, topic, horizon=dt.timedelta(hours=24), handle=window.handle
    )
    follower.start()
    try:
        await asyncio.wait_for(follower.caught_up.wait(), 30)
        await _wait(lambda: window.panel().data is not None and window.panel().data.total_24h == 3)  # type: ignore[union-attr]
        data = window.panel().data
        assert data is not None
        assert data.by_reason == [("invalid_nik", 2), ("undecodable", 1)]
        assert dict(data.by_opd) == {"dukcapil": 2, "dinkes": 1}
    finally:
        await follower.stop()


async def test_a_follower_waits_for_a_topic_that_does_not_exist_yet(
    kafka_conn: KafkaConnection,
) -> None:
    follower = TopicFollower(
        kafka_conn, "test.portal.never-created", horizon=dt.timedelta(hours=1), handle=print
    )
    follower.start()
    try:
        await _wait(lambda: follower.last_error is not None)
        assert "does not exist" in str(follower.last_error)
        assert not follower.caught_up.is_set()
    finally:
        await follower.stop()


async def test_lag_panel_shows_what_a_group_has_not_consumed(
    kafka_conn: KafkaConnection, topic_factory: Callable[..., Any]
) -> None:
    topic = await topic_factory("test.portal.lag.", partitions=2)
    group = f"test-portal-lag-{os.getpid()}-{topic[-6:]}"
    producer = create_producer(kafka_conn)
    await producer.start()
    try:
        for i in range(10):
            await producer.send_and_wait(topic, b"x", partition=i % 2)
    finally:
        await producer.stop()
    consumer = create_consumer(kafka_conn, group_id=group)
    await consumer.start()
    try:
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        consumer.assign([tp0, tp1])
        await consumer.commit({tp0: 3, tp1: 5})  # 2 + 0 left
    finally:
        await consumer.stop()
    async with KafkaInspector(kafka_conn) as kafka:
        panel = await lag_panel(kafka)
    assert panel.data is not None
    rows = {r.group: r for r in panel.data}
    assert rows[group].lag == 2 and rows[group].topics == [topic]


async def test_lintas_up_makes_one_first_operator(fresh_db: str, tmp_path: Path) -> None:
    created = await ensure_admin(fresh_db, tmp_path)
    assert created == admin_password_file(tmp_path)
    assert stat.S_IMODE(created.stat().st_mode) == 0o600
    password = created.read_text().strip()
    assert len(password) >= 16
    assert await ensure_admin(fresh_db, tmp_path) is None  # once only
    assert created.read_text().strip() == password
    pool = await create_pool(fresh_db, max_size=1)
    try:
        users = PortalUsers(pool)
        admin = await users.authenticate(ADMIN_NAME, password)
        assert admin.role is Role.OPERATOR
        with pytest.raises(SignInFailed):
            await users.authenticate(ADMIN_NAME, password + "x")
        # The hash is Argon2id, never the password.
        async with pool.acquire() as conn:
            stored = await conn.fetchval("SELECT password_hash FROM lintas.portal_users")
        assert stored.startswith("$argon2id$") and password not in stored
    finally:
        await pool.close()

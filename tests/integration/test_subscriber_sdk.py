"""The subscriber SDK against the real broker, registry and database: typed events, commits
after the handler, failing handlers dead-lettered, idempotent handlers with SeenEvents."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from delivery_helpers import IZIN, KEMATIAN, DeliveryEnv, delivery_env

from lintas.consumers import DeliveredEvent, SeenEvents, Subscriber
from lintas.consumers.subscriber import DeliveryTopicMissing
from lintas.kafka import KafkaConnection
from lintas.postgres import create_pool
from lintas.settings import Settings

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def env(
    fresh_db: str,
    tmp_path: Path,
    kafka_conn: KafkaConnection,
    registry_url: str,
    topic_factory: Callable[..., Any],
) -> AsyncIterator[DeliveryEnv]:
    async with delivery_env(fresh_db, tmp_path, kafka_conn, registry_url, topic_factory) as d:
        yield d


def subscriber(name: str, kafka: KafkaConnection, registry_url: str, **options: Any) -> Subscriber:
    return Subscriber(
        name,
        settings=Settings(),
        kafka=kafka,
        registry_url=registry_url,
        group_id=f"test-sub-{name}",
        **options,
    )


async def take(sub: Subscriber, count: int, *, timeout: float = 60) -> list[DeliveredEvent]:
    """``count`` events through ``async for`` (each acknowledged by the loop)."""
    got: list[DeliveredEvent] = []

    async def loop() -> None:
        async for event in sub:
            got.append(event)
            if len(got) == count:
                sub.ack(event)
                break

    await asyncio.wait_for(loop(), timeout)
    return got


async def test_typed_when_every_field_is_delivered_dict_for_a_projection_commit_after_handler(
    env: DeliveryEnv, kafka_conn: KafkaConnection, registry_url: str
) -> None:
    name, _ = await env.subscriber("sdk")
    full = await env.produce(name, 4, keys=2, event_type=KEMATIAN)
    partial = await env.produce(
        name, 3, event_type=IZIN, fields=("nomor_izin", "nib", "kode_wilayah")
    )
    async with subscriber(name, kafka_conn, registry_url) as sub:
        events = await take(sub, 7)
    by_id = {e.id: e for e in events}
    assert set(by_id) == {r.event_id for r in full + partial}
    for routed in full:
        event = by_id[routed.event_id]
        assert event.typed and type(event.data).__name__ == "KematianDicatat"
        assert event.data.nik == routed.key  # type: ignore[union-attr]
        assert event.subject == routed.key and event.type == KEMATIAN.id
    for routed in partial:
        event = by_id[routed.event_id]
        assert not event.typed
        assert event.data == event.record
        assert set(event.record) == {"nomor_izin", "nib", "kode_wilayah"}
    # Per key, in the order routed.
    order = [e.id for e in events if e.subject == full[0].key and e.type == KEMATIAN.id]
    assert order == [r.event_id for r in full if r.key == full[0].key]

    # Committed: the same group starts after them and sees only what comes next.
    later = await env.produce(name, 1)
    async with subscriber(name, kafka_conn, registry_url) as sub:
        (next_event,) = await take(sub, 1)
    assert next_event.id == later[0].event_id


async def test_run_dead_letters_a_handler_that_keeps_failing_and_goes_on(
    env: DeliveryEnv, kafka_conn: KafkaConnection, registry_url: str
) -> None:
    name, _ = await env.subscriber("sdkfail")
    routed = await env.produce(name, 6, keys=3)
    poison = routed[2].event_id
    calls: Counter[str] = Counter()
    handled: set[str] = set()

    async def handler(event: DeliveredEvent) -> None:
        calls[event.id] += 1
        if event.id == poison:
            raise RuntimeError("penerima tidak ditemukan")
        handled.add(event.id)

    async with subscriber(
        name, kafka_conn, registry_url, max_attempts=3, retry_backoff=0.05
    ) as sub:
        task = asyncio.create_task(sub.run(handler))
        try:
            for _ in range(600):
                if len(handled) == 5 and sub.dead_lettered == 1:
                    break
                await asyncio.sleep(0.1)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert handled == {r.event_id for r in routed} - {poison}
    assert calls[poison] == 3
    assert all(calls[i] == 1 for i in handled)
    letters = await env.dead_letters(name)
    assert set(letters) == {poison}
    assert letters[poison]["reason"] == "handler_failed"
    assert letters[poison]["attempts"] == "3"
    assert "penerima tidak ditemukan" in (letters[poison]["message"] or "")


async def test_async_for_body_that_raises_gets_the_event_again_then_dlq(
    env: DeliveryEnv, kafka_conn: KafkaConnection, registry_url: str
) -> None:
    name, _ = await env.subscriber("sdkloop")
    routed = await env.produce(name, 3, keys=1)  # one key: one partition, in this order
    poison = routed[0].event_id
    attempts: list[int] = []
    good: list[str] = []
    async with subscriber(name, kafka_conn, registry_url, max_attempts=2) as sub:
        for _ in range(3):
            try:
                async for event in sub:
                    if event.id == poison:
                        attempts.append(event.attempt)
                        raise ValueError("boom")
                    good.append(event.id)
                    if len(good) == 2:
                        sub.ack(event)
                        break
            except ValueError:
                continue
            break
    assert attempts == [1, 2]
    assert good == [r.event_id for r in routed[1:]]
    assert set(await env.dead_letters(name)) == {poison}


async def test_seen_events_make_a_handler_idempotent_across_redelivery(
    env: DeliveryEnv, fresh_db: str, kafka_conn: KafkaConnection, registry_url: str
) -> None:
    name, _ = await env.subscriber("sdkseen")
    routed = await env.produce(name, 5)
    pool = await create_pool(fresh_db)
    seen = SeenEvents(consumer=name)
    try:
        await seen.create_table(pool)
        await pool.execute("CREATE TABLE IF NOT EXISTS bansos_stop (event_id text, nik text)")

        async def handle(event: DeliveredEvent) -> None:
            async with pool.acquire() as conn, conn.transaction():
                if not await seen.first_time(conn, event.id):
                    return
                await conn.execute(
                    "INSERT INTO bansos_stop VALUES ($1, $2)", event.id, event.subject
                )

        # Two groups read the same events: at least once, as after a crash before a commit.
        for group in ("a", "b"):
            async with Subscriber(
                name,
                settings=Settings(),
                kafka=kafka_conn,
                registry_url=registry_url,
                group_id=f"test-seen-{name}-{group}",
            ) as sub:
                for event in await take(sub, len(routed)):
                    await handle(event)
        rows = await pool.fetch("SELECT event_id FROM bansos_stop")
        assert sorted(r["event_id"] for r in rows) == sorted(r.event_id for r in routed)
        assert await seen.seen(pool, routed[0].event_id)
    finally:
        await pool.close()


async def test_missing_delivery_topic_is_a_clear_error(
    kafka_conn: KafkaConnection, registry_url: str
) -> None:
    with pytest.raises(DeliveryTopicMissing) as caught:
        async with subscriber("no-such-subscriber-x", kafka_conn, registry_url):
            pass
    assert "lintas.deliver.no-such-subscriber-x" in str(caught.value)

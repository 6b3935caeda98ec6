"""The store sink under faults: SIGKILL at random points, and PostgreSQL crashing.

50,000 canonical events (times ``LINTAS_TEST_SCALE``) of three event types, some of them
twice (the canonical topics are at-least-once), flow while the real ``lintas sink`` process
is killed with SIGKILL ten times at random points and its PostgreSQL is stopped in
immediate mode once (a crash: no checkpoint, recovery at the next start). Afterwards the
raw table holds exactly the distinct event ids produced and every typed table agrees.

The database is a private cluster (the shared one must not be restarted under other
tests); Kafka and the registry are the session's.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
from store_helpers import BANSOS, KEMATIAN, KK, new_prefix, wait_until

from lintas.consumers.sinks.testing import (
    CanonicalTopics,
    SinkProcess,
    canonical_event,
    sink_env,
    varied_payload,
)
from lintas.deploy.local import LocalStack
from lintas.kafka import KafkaConnection
from lintas.migrate import migrate
from lintas.postgres import connect
from lintas.schemas.registry import SchemaRegistryClient

KILLS = 10
PG_RESTART_AT = 4  # before the fifth kill
TYPES = (KEMATIAN, BANSOS, KK)


async def _consumed(dsn: str) -> int | None:
    """Records the sink has stored offsets past; ``None`` while the database is down."""
    try:
        conn = await connect(dsn, timeout=2)
    except (OSError, asyncpg.PostgresError):
        return None
    try:
        return int(
            await conn.fetchval("SELECT coalesce(sum(next_offset), 0) FROM lintas.sink_offsets")
        )
    finally:
        await conn.close()


async def _until(dsn: str, done: Callable[[int], bool], sink: SinkProcess, what: str) -> None:
    """Wait until ``done(records consumed)``; fail with the sink's log after 60 s."""
    for _ in range(600):
        now = await _consumed(dsn)
        if now is not None and done(now):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the sink did not {what} in 60 s:\n" + sink.log_tail())


async def test_sigkill_and_a_postgres_crash_lose_and_duplicate_nothing(
    private_stack: LocalStack,
    kafka_conn: KafkaConnection,
    registry_url: str,
    scale: float,
    tmp_path: Path,
) -> None:
    rng = random.Random()
    state = await asyncio.to_thread(private_stack.up_postgres)
    dsn = private_stack.admin_dsn(state)
    pg_port = state.components["postgres"].port
    await migrate(dsn)

    total = int(50_000 * scale)
    events: dict[Any, list[dict[str, Any]]] = {t: [] for t in TYPES}
    for n in range(total):
        event_type = TYPES[n % len(TYPES)]
        events[event_type].append(canonical_event(event_type, varied_payload(event_type, n)))
    # Every 50th event is sent twice, as a worker retry would.
    resent = {t: evs[::50] for t, evs in events.items()}

    # Ten rounds: produce a tenth of the events, wait until the sink is writing them, kill
    # it at a random point of that; once, crash PostgreSQL under it first.
    chunks = [
        [(t, e) for t in TYPES for e in events[t][k::KILLS]]
        + [(t, e) for t in TYPES for e in resent[t][k::KILLS]]
        for k in range(KILLS)
    ]
    records = sum(len(c) for c in chunks)
    expected = {e["event_id"] for evs in events.values() for e in evs}
    async with SchemaRegistryClient(registry_url) as registry:
        topics = CanonicalTopics(kafka_conn, registry, new_prefix("f"))
        env = sink_env(
            kafka=kafka_conn,
            registry_url=registry_url,
            pg_dsn=dsn,
            group_id=f"fault-{uuid.uuid4().hex[:8]}",
            topic_prefix=topics.prefix,
            # Static membership: a restarted sink takes its partitions back at once.
            extra={"LINTAS_SINK__INSTANCE_ID": "fault-sink", "LINTAS_SINK__SESSION_TIMEOUT_S": "6"},
        )
        log = tmp_path / "sink.log"
        sink: SinkProcess | None = None
        try:
            await topics.create(TYPES, partitions=3)
            sink = SinkProcess(env, log_path=log)
            produced = 0
            for kill, chunk in enumerate(chunks):
                # In the round PostgreSQL crashes, the second half comes after the crash, so
                # the same sink process must carry on writing once the database is back.
                halves = [chunk[: len(chunk) // 2], chunk[len(chunk) // 2 :]]
                if kill != PG_RESTART_AT:
                    halves = [chunk]
                for half, part in enumerate(halves):
                    before = await _consumed(dsn) or 0
                    for event_type in TYPES:
                        await topics.produce(event_type, [e for t, e in part if t is event_type])
                    produced += len(part)
                    await _until(dsn, lambda n, b=before: n > b, sink, "write")
                    if kill == PG_RESTART_AT and half == 0:
                        await asyncio.sleep(rng.uniform(0, 0.5))
                        await asyncio.to_thread(private_stack.down, only="postgres", immediate=True)
                        state = await asyncio.to_thread(private_stack.up_postgres)
                        assert state.components["postgres"].port == pg_port
                if kill == PG_RESTART_AT:
                    await _until(dsn, lambda n, p=produced: n >= p, sink, "recover")
                await asyncio.sleep(rng.uniform(0, 0.5))
                assert sink.alive, "the sink exited by itself:\n" + sink.log_tail()
                sink.kill()
                sink = SinkProcess(env, log_path=log)
            consumed = await wait_until(
                dsn,
                "SELECT coalesce(sum(next_offset), 0) FROM lintas.sink_offsets",
                lambda n: n >= records,
                timeout=240,
            )
            assert consumed == records, sink.log_tail()
            # The last sink, once running, stops cleanly on SIGTERM.
            for _ in range(600):
                if log.read_text(errors="replace").count(" started (batches") > KILLS:
                    break
                await asyncio.sleep(0.1)
            assert sink.stop() == 0, sink.log_tail()
        finally:
            if sink is not None:
                sink.kill()
            await topics.close()

    conn = await connect(dsn)
    try:
        raw = [r[0] for r in await conn.fetch("SELECT event_id FROM store.raw_events")]
        assert len(raw) == len(set(raw))
        assert set(raw) == expected
        for event_type in TYPES:
            table = f"store.{event_type.opd}_{event_type.name}_v1"
            typed = {r[0] for r in await conn.fetch(f"SELECT event_id FROM {table}")}
            assert typed == {e["event_id"] for e in events[event_type]}, event_type.id
            by_raw = await conn.fetchval(
                "SELECT count(*) FROM store.raw_events WHERE event_type = $1", event_type.id
            )
            assert by_raw == len(typed)
    finally:
        await conn.close()

"""Stream workers against the real broker: a SIGKILL mid-stream loses nothing, and a restart
with no new input emits nothing. Counted by event id, never by time."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from lintas.kafka import KafkaConnection
from lintas.schemas import AvroSerializer, EventType, load_catalog
from lintas.schemas.registry import SchemaRegistryClient
from lintas.streams.testing import (
    OpdRecord,
    StreamsNamespace,
    TopicCollector,
    WorkerProcess,
    cloudevent_headers,
    create_topics,
    delete_namespace,
    group_lag,
    group_members,
    opd_record,
    produce,
    read_topic,
    varied_event,
)

TYPES = ("dukcapil.kematian_dicatat.v1", "dinsos.bansos_disalurkan.v1")


@pytest_asyncio.fixture(loop_scope="session")
async def serializer(registry_url: str) -> AsyncIterator[AvroSerializer]:
    async with SchemaRegistryClient(registry_url) as registry:
        yield AvroSerializer(registry, auto_register=True)


async def _records(
    serializer: AvroSerializer, event_type: EventType, count: int, *, invalid_every: int
) -> tuple[list[OpdRecord], set[str], set[str]]:
    """``count`` records; every ``invalid_every``-th is invalid in one of four ways."""
    records: list[OpdRecord] = []
    valid: set[str] = set()
    invalid: set[str] = set()
    for i in range(count):
        event = varied_event(event_type, i)
        kind = (i // invalid_every) % 4 if i % invalid_every == invalid_every - 1 else None
        if kind == 0:
            event["kode_wilayah"] = "32.73.01.9999"  # not a village
        elif kind == 1:
            event[event_type.subject_field] = "3273013213480001"  # month 13
        elif kind == 2:
            event["kode_wilayah"] = "99.99"  # no such province
        record = await opd_record(serializer, event_type, event)
        if kind == 3:  # garbage bytes with a proper envelope
            record = OpdRecord(
                event_id=record.event_id,
                key=record.key,
                value=b"\x07not avro at all",
                headers=cloudevent_headers(event_type, event_id=record.event_id),
            )
        records.append(record)
        (valid if kind is None else invalid).add(record.event_id)
    return records, valid, invalid


async def _wait_members(conn: KafkaConnection, group: str, want: int, workers: list) -> None:
    for _ in range(600):
        if await group_members(conn, group) == want:
            return
        for w in workers:
            assert w.alive, f"a worker exited:\n{w.log_tail()}"
        await asyncio.sleep(0.2)
    raise AssertionError(f"the group never had {want} members")


async def _wait_committed(
    conn: KafkaConnection, group: str, topic: str, worker: WorkerProcess
) -> None:
    """Until the group has committed every record of ``topic``."""
    for _ in range(600):
        if await group_lag(conn, group, [topic]) == 0:
            return
        assert worker.alive, worker.log_tail()
        await asyncio.sleep(0.2)
    raise AssertionError(f"offsets never committed:\n{worker.log_tail()}")


async def test_sigkill_one_of_two_workers_loses_nothing(
    kafka_conn: KafkaConnection,
    registry_url: str,
    serializer: AvroSerializer,
    scale: float,
    tmp_path: Path,
) -> None:
    ns = StreamsNamespace.fresh(partitions=6, label="g")
    catalog = load_catalog()
    types = [catalog.get(t) for t in TYPES]
    await create_topics(kafka_conn, [ns.names.source(t.id) for t in types], partitions=6)
    per_type = int(20_000 * scale) // len(types)
    batches = [await _records(serializer, t, per_type, invalid_every=10) for t in types]
    valid = set().union(*(b[1] for b in batches))
    invalid = set().union(*(b[2] for b in batches))
    env = ns.env()
    first = WorkerProcess(env, log_path=tmp_path / "worker-1.log")
    second = WorkerProcess(env, log_path=tmp_path / "worker-2.log")
    try:
        await _wait_members(kafka_conn, ns.app_id, 2, [first, second])
        async with (
            TopicCollector(kafka_conn, ns.names.canonical(types[0].id)) as canonical_a,
            TopicCollector(kafka_conn, ns.names.canonical(types[1].id)) as canonical_b,
            TopicCollector(kafka_conn, ns.names.dlq) as dlq,
        ):
            producing = asyncio.gather(
                *(
                    produce(kafka_conn, ns.names.source(t.id), b[0], chunk=500)
                    for t, b in zip(types, batches, strict=True)
                )
            )
            # Kill one worker once about a third of the valid events came out.
            third = len(valid) // 3
            reached = await canonical_a.wait_for(
                lambda _: canonical_a.count + canonical_b.count >= third, timeout=300
            )
            assert reached, f"no progress:\n{first.log_tail()}\n{second.log_tail()}"
            first.kill()
            await producing

            def done(_: TopicCollector) -> bool:
                out = set(canonical_a.ids()) | set(canonical_b.ids())
                return out >= valid and set(dlq.ids()) >= invalid

            finished = await dlq.wait_for(done, timeout=600)
            assert second.alive, second.log_tail()
            out = Counter(canonical_a.ids()) + Counter(canonical_b.ids())
            assert finished, f"missing {len(valid - set(out))} valid events:\n{second.log_tail()}"
            assert set(out) == valid, "an invalid event reached a canonical topic"
            assert set(dlq.ids()) == invalid, "the DLQ holds something that is not invalid"
            # At least once: repeats are allowed only for what the killed worker had in flight.
            repeats = sum(n - 1 for n in out.values())
            assert repeats <= len(valid) // 2
    finally:
        first.kill()
        second.kill()
        await delete_namespace(kafka_conn, ns, registry_url)


async def test_restart_without_new_input_emits_nothing(
    kafka_conn: KafkaConnection,
    registry_url: str,
    serializer: AvroSerializer,
    scale: float,
    tmp_path: Path,
) -> None:
    ns = StreamsNamespace.fresh(partitions=3, label="r")
    kematian = load_catalog().get("dukcapil.kematian_dicatat.v1")
    source = ns.names.source(kematian.id)
    await create_topics(kafka_conn, [source], partitions=3)
    records, valid, invalid = await _records(
        serializer, kematian, int(500 * scale), invalid_every=7
    )
    await produce(kafka_conn, source, records)
    env = ns.env()
    try:
        async with (
            TopicCollector(kafka_conn, ns.names.canonical(kematian.id)) as canonical,
            TopicCollector(kafka_conn, ns.names.dlq) as dlq,
        ):
            with WorkerProcess(env, log_path=tmp_path / "before.log") as worker:
                ok = await canonical.wait_for(
                    lambda c: set(c.ids()) >= valid and set(dlq.ids()) >= invalid, timeout=180
                )
                assert ok, worker.log_tail()
                await _wait_committed(kafka_conn, ns.app_id, source, worker)
                # Dedup must survive the restart too: resend an accepted event afterwards.
                accepted = next(r for r in records if r.event_id in valid)
            before = (
                len(await read_topic(kafka_conn, ns.names.canonical(kematian.id))),
                len(await read_topic(kafka_conn, ns.names.dlq)),
            )
            assert before == (len(valid), len(invalid))

            sentinel = await opd_record(serializer, kematian, varied_event(kematian, 9_999))
            await produce(kafka_conn, source, [accepted, sentinel])
            with WorkerProcess(env, log_path=tmp_path / "after.log") as worker:
                ok = await canonical.wait_for(lambda c: sentinel.event_id in c.ids(), timeout=180)
                assert ok, worker.log_tail()
                # Both new records are done once the group committed past them.
                await _wait_committed(kafka_conn, ns.app_id, source, worker)
        after = await read_topic(kafka_conn, ns.names.canonical(kematian.id))
        after_ids = [r.header("ce_id") for r in after]
        assert len(after) == before[0] + 1, "the restart emitted old events again"
        assert after_ids.count(accepted.event_id) == 1, "dedup forgot its ids in the restart"
        assert len(await read_topic(kafka_conn, ns.names.dlq)) == before[1], (
            "the restart dead-lettered old records again"
        )
    finally:
        await delete_namespace(kafka_conn, ns, registry_url)

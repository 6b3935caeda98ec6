"""The store sink against the real broker, registry and database.

Each test has canonical topics under a prefix of its own and a fresh database; records are
canonical records as the stream workers write them (their schema and record functions).
Counts are by event id.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata
from store_helpers import BANSOS, KEMATIAN, KK, new_prefix, running_sink, wait_until

from lintas.consumers.sinks.testing import CanonicalTopics, canonical_event, varied_payload
from lintas.kafka import KafkaConnection, create_consumer
from lintas.postgres import connect
from lintas.schemas.registry import SchemaRegistryClient
from lintas.streams import canonical_schema
from lintas.streams.testing import read_topic


@pytest_asyncio.fixture(loop_scope="session")
async def registry(registry_url: str) -> AsyncIterator[SchemaRegistryClient]:
    async with SchemaRegistryClient(registry_url) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def canonical(
    kafka_conn: KafkaConnection, registry: SchemaRegistryClient
) -> AsyncIterator[CanonicalTopics]:
    topics = CanonicalTopics(kafka_conn, registry, new_prefix())
    try:
        yield topics
    finally:
        await topics.close()


def _events(event_type: Any, count: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        canonical_event(event_type, varied_payload(event_type, n))
        for n in range(start, start + count)
    ]


async def test_every_event_lands_once_in_raw_and_typed_tables(
    kafka_conn: KafkaConnection,
    registry: SchemaRegistryClient,
    canonical: CanonicalTopics,
    fresh_db: str,
) -> None:
    await canonical.create([KEMATIAN, BANSOS, KK])
    produced: dict[str, list[dict[str, Any]]] = {}
    for event_type in (KEMATIAN, BANSOS, KK):
        events = _events(event_type, 300)
        produced[event_type.id] = events
        # Canonical topics are at-least-once: some events arrive twice.
        await canonical.produce(event_type, events + events[:25])
    ids = {e["event_id"] for events in produced.values() for e in events}

    async with running_sink(kafka_conn, fresh_db, registry, canonical.prefix) as sink:
        stored = await wait_until(
            fresh_db, "SELECT count(*) FROM store.raw_events", lambda n: n >= len(ids)
        )
    assert stored == len(ids)
    assert sink.written == 3 * 325
    # The backlog was there before the sink started: it went in a few large batches.
    assert sink.batches <= 10

    conn = await connect(fresh_db)
    try:
        assert {
            r["event_id"] for r in await conn.fetch("SELECT event_id FROM store.raw_events")
        } == ids
        for event_type in (KEMATIAN, BANSOS, KK):
            table = f"store.{event_type.opd}_{event_type.name}_v1"
            typed = {r["event_id"] for r in await conn.fetch(f"SELECT event_id FROM {table}")}
            assert typed == {e["event_id"] for e in produced[event_type.id]}
        # Typed columns hold typed values; nested records are JSON.
        one = produced[BANSOS.id][7]
        row = await conn.fetchrow(
            "SELECT nik, nilai, id_penyaluran, disalurkan_pada, program, tahap "
            "FROM store.dinsos_bansos_disalurkan_v1 WHERE event_id = $1",
            one["event_id"],
        )
        payload = one["payload"]
        assert dict(row) == {k: payload[k] for k in row.keys()}  # noqa: SIM118
        kk = produced[KK.id][3]
        raw = await conn.fetchrow(
            "SELECT niks, payload->'anggota'->0->>'nik' AS first, nama_kecamatan, kafka_topic "
            "FROM store.raw_events WHERE event_id = $1",
            kk["event_id"],
        )
        members = {m["nik"] for m in kk["payload"]["anggota"]}
        assert set(raw["niks"]) == {kk["payload"]["nik"], *members}
        assert raw["first"] == kk["payload"]["anggota"][0]["nik"]
        assert raw["nama_kecamatan"] == "Sukasari"
        assert raw["kafka_topic"] == canonical.topic(KK)
        # The stored offsets cover every record read, duplicates included.
        total = await conn.fetchval("SELECT sum(next_offset) FROM lintas.sink_offsets")
        assert total == 3 * 325

        # Forget the offsets: a sink reads everything again and stores nothing twice.
        await conn.execute("DELETE FROM lintas.sink_offsets")
        async with running_sink(kafka_conn, fresh_db, registry, canonical.prefix, group="again"):
            again = await wait_until(
                fresh_db, "SELECT sum(next_offset) FROM lintas.sink_offsets", lambda n: n == 975
            )
        assert again == 975
        assert await conn.fetchval("SELECT count(*) FROM store.raw_events") == len(ids)
        for event_type in (KEMATIAN, BANSOS, KK):
            table = f"store.{event_type.opd}_{event_type.name}_v1"
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 300
    finally:
        await conn.close()


async def test_the_sink_seeks_to_stored_offsets_not_the_groups_committed_ones(
    kafka_conn: KafkaConnection,
    registry: SchemaRegistryClient,
    canonical: CanonicalTopics,
    fresh_db: str,
) -> None:
    await canonical.create([KEMATIAN], partitions=2)
    events = _events(KEMATIAN, 100)
    await canonical.produce(KEMATIAN, events)
    group = f"store-{uuid.uuid4().hex[:8]}"
    # The group has committed the end of every partition (as a sink of another store would
    # have): a fresh store must still read everything.
    topic = canonical.topic(KEMATIAN)
    consumer = create_consumer(kafka_conn, group_id=group)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(2)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.commit({tp: OffsetAndMetadata(off, "") for tp, off in ends.items()})
    finally:
        await consumer.stop()

    async with running_sink(kafka_conn, fresh_db, registry, canonical.prefix, group=group):
        stored = await wait_until(
            fresh_db, "SELECT count(*) FROM store.raw_events", lambda n: n >= 100
        )
    assert stored == 100


async def test_a_new_optional_field_adds_a_nullable_column(
    kafka_conn: KafkaConnection,
    registry: SchemaRegistryClient,
    canonical: CanonicalTopics,
    fresh_db: str,
) -> None:
    await canonical.create([BANSOS], partitions=1)
    old = _events(BANSOS, 20)
    await canonical.produce(BANSOS, old)
    schema = copy.deepcopy(canonical_schema(BANSOS))
    payload = next(f for f in schema["fields"] if f["name"] == "payload")["type"]
    payload["fields"].append(
        {
            "name": "nomor_rekening",
            "type": ["null", "string"],
            "default": None,
            "doc": "Account the aid was paid into.",
            "pii": "ekonomi",
        }
    )
    new = _events(BANSOS, 20, start=20)
    for n, event in enumerate(new):
        event["payload"]["nomor_rekening"] = f"0012-{n:04d}"

    async with running_sink(kafka_conn, fresh_db, registry, canonical.prefix):
        await wait_until(fresh_db, "SELECT count(*) FROM store.raw_events", lambda n: n >= 20)
        # The registry accepts it (BACKWARD): the sink meets the new version while running.
        await canonical.produce(BANSOS, new, schema=schema)
        stored = await wait_until(
            fresh_db, "SELECT count(*) FROM store.raw_events", lambda n: n >= 40
        )
    assert stored == 40

    conn = await connect(fresh_db)
    try:
        values = {
            r["event_id"]: r["nomor_rekening"]
            for r in await conn.fetch(
                "SELECT event_id, nomor_rekening FROM store.dinsos_bansos_disalurkan_v1"
            )
        }
        assert {values[e["event_id"]] for e in old} == {None}
        assert [values[e["event_id"]] for e in new] == [f"0012-{n:04d}" for n in range(20)]
        # The analytics view has the column too, masked as the tag says.
        masked = await conn.fetchval(
            "SELECT count(*) FROM analytics.dinsos_bansos_disalurkan_v1 "
            "WHERE nomor_rekening IS NOT NULL"
        )
        assert masked == 20  # the platform user may see personal data
        pii = await conn.fetchval(
            "SELECT pii_columns->>'nomor_rekening' FROM store.event_types WHERE event_type = $1",
            BANSOS.id,
        )
        assert pii == "ekonomi"
    finally:
        await conn.close()


async def test_a_change_the_store_cannot_follow_stops_only_that_event_type(
    kafka_conn: KafkaConnection,
    registry: SchemaRegistryClient,
    canonical: CanonicalTopics,
    fresh_db: str,
) -> None:
    await canonical.create([BANSOS, KEMATIAN], partitions=1)
    before = _events(BANSOS, 10)
    await canonical.produce(BANSOS, before)
    # tahap becomes a string: a type change no column can follow (allowed only because the
    # subject's compatibility is NONE, as an operator could set it).
    subject = f"{canonical.topic(BANSOS)}-value"
    await registry.set_compatibility("NONE", subject)
    schema = copy.deepcopy(canonical_schema(BANSOS))
    payload = next(f for f in schema["fields"] if f["name"] == "payload")["type"]
    next(f for f in payload["fields"] if f["name"] == "tahap")["type"] = "string"
    after = _events(BANSOS, 10, start=10)
    for event in after:
        event["payload"]["tahap"] = "II"
    await canonical.produce(BANSOS, after, schema=schema)
    kematian = _events(KEMATIAN, 30)

    async with running_sink(kafka_conn, fresh_db, registry, canonical.prefix) as sink:
        await canonical.produce(KEMATIAN, kematian)
        await wait_until(
            fresh_db,
            f"SELECT count(*) FROM store.raw_events WHERE event_type = '{KEMATIAN.id}'",
            lambda n: n >= 30,
        )
        stopped = dict(sink.stopped_topics)

    conn = await connect(fresh_db)
    try:
        by_type = dict(
            await conn.fetch("SELECT event_type, count(*) FROM store.raw_events GROUP BY 1")
        )
        assert by_type == {KEMATIAN.id: 30, BANSOS.id: 10}
        bansos_ids = {
            r[0] for r in await conn.fetch("SELECT event_id FROM store.dinsos_bansos_disalurkan_v1")
        }
        assert bansos_ids == {e["event_id"] for e in before}
        # Its offset stops at the first record of the new version: nothing is skipped.
        offset = await conn.fetchval(
            "SELECT next_offset FROM lintas.sink_offsets WHERE topic = $1", canonical.topic(BANSOS)
        )
        assert offset == 10
        reason = await conn.fetchval(
            "SELECT reason FROM lintas.sink_stopped WHERE event_type = $1", BANSOS.id
        )
    finally:
        await conn.close()
    assert set(stopped) == {canonical.topic(BANSOS)}
    assert reason == (
        "The store cannot follow the schema of dinsos.bansos_disalurkan.v1: "
        "store.dinsos_bansos_disalurkan_v1.tahap: the column is bigint, the new schema "
        "needs text."
    )


async def test_an_undecodable_record_is_dead_lettered_and_the_rest_flows(
    kafka_conn: KafkaConnection,
    registry: SchemaRegistryClient,
    canonical: CanonicalTopics,
    fresh_db: str,
) -> None:
    await canonical.create([KEMATIAN], partitions=1)
    first, second = _events(KEMATIAN, 5), _events(KEMATIAN, 5, start=5)
    await canonical.produce(KEMATIAN, first)
    await canonical.send_raw(KEMATIAN, b"not avro at all", key=b"x")
    await canonical.send_raw(KEMATIAN, b"\x00\x7f\xff\xff\xf0garbage")  # an unknown schema id
    await canonical.produce(KEMATIAN, second)
    dlq = f"{canonical.prefix}lintas.dlq"
    await canonical.create_named([dlq])

    async with running_sink(kafka_conn, fresh_db, registry, canonical.prefix):
        stored = await wait_until(
            fresh_db, "SELECT count(*) FROM store.raw_events", lambda n: n >= 10
        )
    assert stored == 10
    letters = await read_topic(kafka_conn, dlq, until=lambda got: len(got) >= 2, timeout=30)
    # Dead letters are at-least-once (a rebalance while one is sent reads it again).
    reasons = {(r.header("lintas.dlq.reason"), r.header("lintas.dlq.offset")) for r in letters}
    assert reasons == {("unknown_schema_id", "6"), ("wire_format", "5")}
    assert {r.header("lintas.dlq.event_type") for r in letters} == {KEMATIAN.id}
    conn = await connect(fresh_db)
    try:
        assert await conn.fetchval("SELECT next_offset FROM lintas.sink_offsets") == 12
    finally:
        await conn.close()


async def test_a_row_the_database_refuses_is_dead_lettered_and_the_rest_written(
    kafka_conn: KafkaConnection,
    registry: SchemaRegistryClient,
    canonical: CanonicalTopics,
    fresh_db: str,
) -> None:
    await canonical.create([BANSOS, KEMATIAN], partitions=1)
    dlq = f"{canonical.prefix}lintas.dlq"
    await canonical.create_named([dlq])
    aid = _events(BANSOS, 40)
    # Valid Avro, but PostgreSQL text cannot hold a NUL character (the server refuses it)
    # and a uuid column no text that is not a UUID (asyncpg refuses to encode it).
    aid[17]["payload"]["nama"] = "Enok\x00Sumiati"
    aid[25]["payload"]["id_penyaluran"] = "bukan-uuid"
    await canonical.produce(BANSOS, aid)
    deaths = _events(KEMATIAN, 40)
    await canonical.produce(KEMATIAN, deaths)

    async with running_sink(kafka_conn, fresh_db, registry, canonical.prefix) as sink:
        consumed = await wait_until(
            fresh_db, "SELECT sum(next_offset) FROM lintas.sink_offsets", lambda n: n == 80
        )
        stopped = sink.stopped_topics
    assert consumed == 80
    assert stopped == {}
    conn = await connect(fresh_db)
    try:
        stored = {r[0] for r in await conn.fetch("SELECT event_id FROM store.raw_events")}
        typed = {
            r[0] for r in await conn.fetch("SELECT event_id FROM store.dinsos_bansos_disalurkan_v1")
        }
    finally:
        await conn.close()
    refused = {aid[17]["event_id"], aid[25]["event_id"]}
    assert stored == {e["event_id"] for e in aid + deaths} - refused
    assert typed == {e["event_id"] for e in aid} - refused
    letters = await read_topic(kafka_conn, dlq, until=lambda got: len(got) >= 2, timeout=30)
    assert {r.header("lintas.dlq.offset") for r in letters} == {"17", "25"}
    letter = letters[0]
    assert letter.header("lintas.dlq.reason") == "processing_error"
    assert "the store refused its row" in (letter.header("lintas.dlq.message") or "")

"""Poison records of every kind end in the dead-letter topic with the right reason, untouched,
and the records after them flow on; canonical events are enriched; metrics count outcomes;
``lintas dlq list|show`` read it all back. One worker for the module, a namespace of its own."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest_asyncio

from lintas.kafka import KafkaConnection
from lintas.schemas import AvroDeserializer, AvroSerializer, EventType, example_event, load_catalog
from lintas.schemas.registry import SchemaRegistryClient
from lintas.streams.testing import (
    OpdRecord,
    StreamsNamespace,
    TopicCollector,
    TopicRecord,
    WorkerProcess,
    cloudevent_headers,
    create_topics,
    delete_namespace,
    opd_record,
    produce,
    read_topic,
    varied_event,
)

CATALOG = load_catalog()
KEMATIAN = CATALOG.get("dukcapil.kematian_dicatat.v1")
BANSOS = CATALOG.get("dinsos.bansos_disalurkan.v1")
IZIN = CATALOG.get("dpmptsp.izin_terbit.v1")


@dataclass
class Scenario:
    ns: StreamsNamespace
    poison: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    """event id -> (expected reason, expected field)"""
    sent: dict[str, OpdRecord] = field(default_factory=dict)
    valid: dict[str, tuple[EventType, dict]] = field(default_factory=dict)
    duplicate_id: str = ""
    canonical: dict[str, list[TopicRecord]] = field(default_factory=dict)
    dlq: list[TopicRecord] = field(default_factory=list)
    metrics: list[TopicRecord] = field(default_factory=list)
    sources: dict[str, list[TopicRecord]] = field(default_factory=dict)


def _with(record: OpdRecord, **changes: object) -> OpdRecord:
    return dataclasses.replace(record, **changes)


async def _poison(
    serializer: AvroSerializer, index: int
) -> list[tuple[str, OpdRecord, str, str | None]]:
    """(topic type id, record, reason, field) of each kind of poison."""
    out: list[tuple[str, OpdRecord, str, str | None]] = []

    async def kematian(changes: dict, reason: str, fld: str | None) -> None:
        event = {**varied_event(KEMATIAN, index + len(out)), **changes}
        out.append((KEMATIAN.id, await opd_record(serializer, KEMATIAN, event), reason, fld))

    base = await opd_record(serializer, KEMATIAN, varied_event(KEMATIAN, index + 90))
    today = dt.datetime.now(dt.UTC).date()
    out.append((KEMATIAN.id, _with(base, value=b"\xffgarbage, not avro"), "wire_format", None))
    unknown_id = b"\x00" + (2**31 - 7).to_bytes(4, "big") + base.value[5:]
    out.append(
        (
            KEMATIAN.id,
            _with(
                base,
                event_id="u-" + base.event_id,
                value=unknown_id,
                headers=cloudevent_headers(KEMATIAN, event_id="u-" + base.event_id),
            ),
            "unknown_schema_id",
            None,
        )
    )
    truncated = base.value[:20]
    out.append(
        (
            KEMATIAN.id,
            _with(
                base,
                event_id="t-" + base.event_id,
                value=truncated,
                headers=cloudevent_headers(KEMATIAN, event_id="t-" + base.event_id),
            ),
            "undecodable",
            None,
        )
    )
    await kematian({"nik": "3273013213480001"}, "invalid_nik", "nik")
    await kematian({"kode_wilayah": "32.73.01.9999"}, "unknown_wilayah", "kode_wilayah")
    await kematian(
        {"tanggal_kematian": today + dt.timedelta(days=30)}, "future_date", "tanggal_kematian"
    )
    await kematian({"tanggal_kematian": dt.date(1940, 1, 1)}, "date_order", "tanggal_kematian")
    await kematian({"nomor_kk": "12345"}, "invalid_field", "nomor_kk")
    await kematian({"tempat_kematian": "x" * 300_000}, "too_large", None)
    no_type = await opd_record(serializer, KEMATIAN, varied_event(KEMATIAN, index + 91))
    no_type = _with(no_type, headers=[h for h in no_type.headers if h[0] != "ce_type"])
    out.append((KEMATIAN.id, no_type, "missing_envelope", "ce_type"))
    wrong_type = await opd_record(serializer, KEMATIAN, varied_event(KEMATIAN, index + 92))
    headers = [
        (k, b"dinsos.bansos_disalurkan.v1" if k == "ce_type" else v) for k, v in wrong_type.headers
    ]
    out.append((KEMATIAN.id, _with(wrong_type, headers=headers), "invalid_envelope", "ce_type"))
    izin = await opd_record(serializer, IZIN, example_event(IZIN))
    mismatch = _with(
        izin, key=base.key, headers=cloudevent_headers(KEMATIAN, event_id=izin.event_id)
    )
    out.append((KEMATIAN.id, mismatch, "schema_mismatch", None))
    bansos = {**varied_event(BANSOS, index + 93)}
    bansos["nilai"] = -bansos["nilai"]
    out.append(
        (BANSOS.id, await opd_record(serializer, BANSOS, bansos), "negative_amount", "nilai")
    )
    return out


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def scenario(
    kafka_conn: KafkaConnection, registry_url: str, tmp_path_factory
) -> AsyncIterator[Scenario]:
    ns = StreamsNamespace.fresh(partitions=3, label="p")
    result = Scenario(ns=ns)
    await create_topics(
        kafka_conn, [ns.names.source(t.id) for t in (KEMATIAN, BANSOS)], partitions=3
    )
    async with SchemaRegistryClient(registry_url) as registry:
        serializer = AvroSerializer(registry, auto_register=True)
        per_topic: dict[str, list[OpdRecord]] = {KEMATIAN.id: [], BANSOS.id: []}
        for n, (type_id, bad, reason, fld) in enumerate(await _poison(serializer, 0)):
            event_type = CATALOG.get(type_id)
            event = varied_event(event_type, 500 + n)
            # A good record right behind the poison, in its partition (the same key).
            good = _with(await opd_record(serializer, event_type, event), key=bad.key)
            per_topic[type_id] += [bad, good]
            result.poison[bad.event_id] = (reason, fld)
            result.valid[good.event_id] = (event_type, event)
            result.sent[bad.event_id] = bad
            result.sent[good.event_id] = good
        twice = per_topic[KEMATIAN.id][-1]
        per_topic[KEMATIAN.id].append(twice)  # a producer retry: the same event again
        result.duplicate_id = twice.event_id
    env = ns.env({"LINTAS_STREAMS__METRICS_WINDOW_S": "1"})
    log = tmp_path_factory.mktemp("poison") / "worker.log"
    with WorkerProcess(env, log_path=log) as worker:
        async with TopicCollector(kafka_conn, ns.names.dlq) as dlq:
            for type_id, records in per_topic.items():
                await produce(kafka_conn, ns.names.source(type_id), records)
            ok = await dlq.wait_for(lambda c: set(c.ids()) >= set(result.poison), timeout=180)
            assert ok, f"dead letters missing:\n{worker.log_tail()}"
        for type_id in per_topic:
            want = {i for i, (t, _) in result.valid.items() if t.id == type_id}
            topic = ns.names.canonical(type_id)
            result.canonical[type_id] = await read_topic(
                kafka_conn,
                topic,
                until=lambda rs, w=want: {r.header("ce_id") for r in rs} >= w,
                timeout=120,
            )
            result.sources[type_id] = await read_topic(kafka_conn, ns.names.source(type_id))
        result.dlq = await read_topic(kafka_conn, ns.names.dlq)
        expected_total = len(result.sent) + 1

        def counted(records: list[TopicRecord]) -> int:
            return sum(json.loads(r.value or b"{}")["count"] for r in records)

        result.metrics = await read_topic(
            kafka_conn,
            ns.names.metrics,
            until=lambda rs: counted(rs) >= expected_total,
            timeout=60,
        )
        assert worker.alive, worker.log_tail()
    try:
        yield result
    finally:
        await delete_namespace(kafka_conn, ns, registry_url)


def test_each_poison_record_is_dead_lettered_with_its_reason(scenario: Scenario) -> None:
    got = {
        r.header("ce_id"): (r.header("lintas.dlq.reason"), r.header("lintas.dlq.field"))
        for r in scenario.dlq
    }
    assert got == scenario.poison
    assert len(scenario.dlq) == len(scenario.poison), "a poison record was dead-lettered twice"
    for record in scenario.dlq:
        assert record.header("lintas.dlq.message"), "every dead letter says why in words"


def test_dead_letters_keep_the_record_untouched_and_say_where_it_came_from(
    scenario: Scenario,
) -> None:
    for record in scenario.dlq:
        sent = scenario.sent[record.header("ce_id") or ""]
        assert record.key == sent.key
        assert record.value == sent.value
        assert [h for h in record.headers if not h[0].startswith("lintas.dlq.")] == sent.headers
        topic = record.header("lintas.dlq.topic") or ""
        partition = int(record.header("lintas.dlq.partition") or -1)
        offset = int(record.header("lintas.dlq.offset") or -1)
        type_id = scenario.ns.names.event_type_id(topic) or ""
        [source] = [
            s for s in scenario.sources[type_id] if (s.partition, s.offset) == (partition, offset)
        ]
        assert source.value == sent.value


def test_records_after_poison_flow_on_once(scenario: Scenario) -> None:
    out = Counter(r.header("ce_id") for rs in scenario.canonical.values() for r in rs)
    assert set(out) == set(scenario.valid)
    assert out[scenario.duplicate_id] == 1, "the same event id became two canonical events"
    assert set(out).isdisjoint(scenario.poison)


async def test_canonical_event_is_enriched(scenario: Scenario, registry_url: str) -> None:
    [record] = [
        r for r in scenario.canonical[KEMATIAN.id] if r.header("ce_id") == scenario.duplicate_id
    ]
    _, original = scenario.valid[scenario.duplicate_id]
    async with SchemaRegistryClient(registry_url) as registry:
        canonical = await AvroDeserializer(registry).deserialize(record.value or b"")
        latest = await registry.get_latest_version(
            f"{scenario.ns.names.canonical(KEMATIAN.id)}-value"
        )
    assert latest.schema_id == int.from_bytes((record.value or b"")[1:5], "big")
    assert canonical["event_id"] == scenario.duplicate_id
    assert canonical["event_type"] == KEMATIAN.id
    assert (canonical["opd"], canonical["application"]) == ("dukcapil", "testapp")
    assert canonical["subject"] == original["nik"]
    assert canonical["source_topic"] == scenario.ns.names.source(KEMATIAN.id)
    assert canonical["wilayah"] == {
        "kode": original["kode_wilayah"],
        "provinsi": "Jawa Barat",
        "kabupaten_kota": "Kota Bandung",
        "kecamatan": "Sukasari",
        "desa_kelurahan": "Sukarasa",
    }
    assert canonical["payload"] == original


def test_metrics_count_every_outcome(scenario: Scenario) -> None:
    counts: Counter[tuple[str, str]] = Counter()
    for record in scenario.metrics:
        doc = json.loads(record.value or b"{}")
        counts[(doc["event_type"], doc["outcome"])] += doc["count"]
    want: Counter[tuple[str, str]] = Counter()
    for event_type, _ in scenario.valid.values():
        want[(event_type.id, "accepted")] += 1
    for event_id in scenario.poison:
        topic_type = BANSOS.id if scenario.poison[event_id][0] == "negative_amount" else KEMATIAN.id
        want[(topic_type, "dead_lettered")] += 1
    want[(KEMATIAN.id, "duplicate")] += 1
    assert counts == want


def _cli(scenario: Scenario, *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "lintas.cli", "dlq", *args, "--json"],
        env=scenario.ns.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def test_dlq_list_and_show(scenario: Scenario) -> None:
    listed = await asyncio.to_thread(_cli, scenario, "list", "--reason", "invalid_nik")
    assert listed["total"] == 1
    assert listed["by_reason_and_opd"] == [{"reason": "invalid_nik", "opd": "dukcapil", "count": 1}]
    [row] = listed["records"]
    assert row["field"] == "nik" and "3273013213480001" in row["message"]
    everything = await asyncio.to_thread(_cli, scenario, "list")
    assert everything["total"] == len(scenario.poison)
    shown = await asyncio.to_thread(_cli, scenario, "show", row["reference"])
    assert shown["event_id"] == row["event_id"]
    assert shown["value"]["record"]["nik"] == "3273013213480001"
    assert shown["headers"]["ce_type"] == KEMATIAN.id
    garbage = next(r for r in everything["records"] if r["reason"] == "wire_format")
    shown = await asyncio.to_thread(_cli, scenario, "show", garbage["reference"])
    assert shown["value"]["record"] is None and shown["value"]["preview_hex"].startswith("ff")

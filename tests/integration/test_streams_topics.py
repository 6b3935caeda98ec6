"""Event types registered while the workers run: their events flow without a restart, and
events dead-lettered before their schema was registered are replayed with their ids."""

from __future__ import annotations

import asyncio
import copy
import subprocess
import sys
import uuid
from pathlib import Path

import orjson

from lintas.kafka import KafkaConnection
from lintas.schemas import AvroDeserializer, AvroSerializer, EventType, load_catalog
from lintas.schemas.registry import SchemaRegistryClient
from lintas.streams import event_type_from_schema
from lintas.streams.testing import (
    OpdRecord,
    StreamsNamespace,
    TopicCollector,
    WorkerProcess,
    cloudevent_headers,
    create_topics,
    delete_namespace,
    group_members,
    produce,
    varied_event,
)

KEMATIAN = load_catalog().get("dukcapil.kematian_dicatat.v1")


def _new_type(opd: str) -> tuple[EventType, str]:
    """A new event type of a new OPD, shaped like kematian_dicatat (catalog rules hold)."""
    schema = copy.deepcopy(KEMATIAN.schema)
    schema["namespace"] = f"id.lintas.{opd}"
    schema["name"] = "KejadianBaru"
    text = orjson.dumps(schema).decode()
    return event_type_from_schema(f"{opd}.kejadian_baru.v1", text), text


async def _records(
    serializer: AvroSerializer, event_type: EventType, subject: str, count: int
) -> list[OpdRecord]:
    out = []
    for i in range(count):
        event = varied_event(KEMATIAN, i)
        event_id = str(uuid.uuid4())
        out.append(
            OpdRecord(
                event_id=event_id,
                key=event["nik"].encode(),
                value=await serializer.serialize(event_type, event, subject=subject),
                headers=cloudevent_headers(event_type, event_id=event_id),
            )
        )
    return out


async def test_new_event_types_flow_and_late_schemas_replay(
    kafka_conn: KafkaConnection, registry_url: str, scale: float, tmp_path: Path
) -> None:
    ns = StreamsNamespace.fresh(partitions=3, label="n")
    names = ns.names
    await create_topics(kafka_conn, [names.source(KEMATIAN.id)], partitions=3)
    count = max(10, int(100 * scale))
    fresh, fresh_schema = _new_type(f"x{uuid.uuid4().hex[:6]}")
    late, late_schema = _new_type(f"y{uuid.uuid4().hex[:6]}")
    try:
        async with SchemaRegistryClient(registry_url) as registry:
            serializer = AvroSerializer(registry, auto_register=True)
            with WorkerProcess(ns.env(), log_path=tmp_path / "worker.log") as worker:
                for _ in range(600):
                    if await group_members(kafka_conn, ns.app_id) == 1:
                        break
                    assert worker.alive, worker.log_tail()
                    await asyncio.sleep(0.2)
                # A new event type, registered and provisioned while the worker runs.
                fresh_subject = f"{names.source(fresh.id)}-value"
                await registry.register(fresh_subject, fresh_schema)
                await create_topics(kafka_conn, [names.source(fresh.id)], partitions=3)
                fresh_records = await _records(serializer, fresh, fresh_subject, count)
                # Another one whose producer wrote before its subject was registered.
                late_subject = f"{names.source(late.id)}-value"
                scratch = f"{ns.prefix}scratch-value"
                await create_topics(kafka_conn, [names.source(late.id)], partitions=3)
                late_records = await _records(serializer, late, scratch, count)
                async with (
                    TopicCollector(kafka_conn, names.canonical(fresh.id)) as canonical,
                    TopicCollector(kafka_conn, names.dlq) as dlq,
                ):
                    await produce(kafka_conn, names.source(fresh.id), fresh_records)
                    await produce(kafka_conn, names.source(late.id), late_records)
                    fresh_ids = {r.event_id for r in fresh_records}
                    late_ids = {r.event_id for r in late_records}
                    ok = await canonical.wait_for(lambda c: set(c.ids()) >= fresh_ids, timeout=180)
                    assert ok, f"the new event type did not flow:\n{worker.log_tail()}"
                    ok = await dlq.wait_for(lambda c: set(c.ids()) >= late_ids, timeout=180)
                    assert ok, worker.log_tail()
                    reasons = {r.header("lintas.dlq.reason") for r in dlq.records}
                    assert reasons == {"unknown_event_type"}

                    await registry.register(late_subject, late_schema)
                    # The worker asks about an unknown topic again after the refresh interval.
                    await asyncio.sleep(3 * 2.0)
                    replay = await asyncio.to_thread(
                        subprocess.run,
                        [
                            sys.executable,
                            "-m",
                            "lintas.cli",
                            "dlq",
                            "replay",
                            "--reason",
                            "unknown_event_type",
                        ],
                        env=ns.env(),
                        capture_output=True,
                        text=True,
                        timeout=120,
                        check=False,
                    )
                    assert replay.returncode == 0, replay.stderr + replay.stdout
                    assert f"{count} of {count} dead letter(s) replayed" in replay.stdout
                async with TopicCollector(kafka_conn, names.canonical(late.id)) as replayed:
                    ok = await replayed.wait_for(lambda c: set(c.ids()) >= late_ids, timeout=180)
                    assert ok, f"replayed events did not flow:\n{worker.log_tail()}"
                    assert sorted(replayed.ids()) == sorted(late_ids), "ids changed on replay"
                    first = replayed.records[0]
                    assert (first.header("lintas.replay.of") or "").startswith(f"{names.dlq}:")
                    record = await AvroDeserializer(registry).deserialize(first.value or b"")
                    assert record["event_type"] == late.id
                    assert record["event_id"] == first.header("ce_id")
                assert worker.alive, worker.log_tail()
    finally:
        await delete_namespace(kafka_conn, ns, registry_url)

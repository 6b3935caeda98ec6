"""Kafka retention on the real broker: each event type's topics keep its events as long as
its contract says, delivery topics no longer than the shortest, dead letters 30 days at
most."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

from lintas.kafka import KafkaConnection, create_admin
from lintas.settings import KafkaSettings
from lintas.topics import DLQ_TOPIC, desired_topics, sync_topics

_DAY_MS = 86_400_000


async def _retention_ms(conn: KafkaConnection, names: list[str]) -> dict[str, int]:
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = create_admin(conn)
    await admin.start()
    try:
        found: dict[str, int] = {}
        resources = [ConfigResource(ConfigResourceType.TOPIC, n) for n in names]
        for response in await admin.describe_configs(resources):
            for resource in response.resources:
                entries = {entry[0]: entry[1] for entry in resource[4]}
                found[resource[3]] = int(entries["retention.ms"])
        return found
    finally:
        await admin.close()


async def _delete(conn: KafkaConnection, names: list[str]) -> None:
    admin = create_admin(conn)
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()


def _type(tag: str, name: str, **schema: Any) -> Any:
    return SimpleNamespace(
        id=f"dinkes.{name}.v1",
        topic=f"opd.rt{tag}.{name}.v1",
        canonical_topic=f"lintas.canonical.rt{tag}.{name}.v1",
        schema={"type": "record", **schema},
    )


async def test_the_broker_keeps_each_event_types_topics_as_its_contract_says(
    kafka_conn: KafkaConnection,
) -> None:
    tag = uuid.uuid4().hex[:8]
    visits = _type(tag, "kunjungan_pasien", retention_days=1.5)
    deaths = _type(tag, "kematian_dicatat")
    specs = desired_topics(
        KafkaSettings(retention_days=10), event_types=[visits, deaths], subscribers=[f"rt{tag}"]
    )
    # Only this test's topics: the shared platform topics are left as they are.
    mine = [s for s in specs if tag in s.name]
    names = [s.name for s in mine]
    await sync_topics(kafka_conn, mine)
    try:
        got = await _retention_ms(kafka_conn, names)
        assert got == {
            visits.topic: int(1.5 * _DAY_MS),
            visits.canonical_topic: int(1.5 * _DAY_MS),
            deaths.topic: 10 * _DAY_MS,
            deaths.canonical_topic: 10 * _DAY_MS,
            f"lintas.deliver.rt{tag}": int(1.5 * _DAY_MS),
        }
        # A retention changed by hand is put back by the next sync.
        changed = desired_topics(KafkaSettings(retention_days=3), event_types=[deaths])
        await sync_topics(kafka_conn, [s for s in changed if tag in s.name])
        assert (await _retention_ms(kafka_conn, [deaths.topic]))[deaths.topic] == 3 * _DAY_MS
    finally:
        await _delete(kafka_conn, names)


async def test_the_platforms_dead_letter_topic_keeps_30_days_at_most(
    kafka_conn: KafkaConnection,
) -> None:
    spec = next(s for s in desired_topics(KafkaSettings()) if s.name == DLQ_TOPIC)
    await sync_topics(kafka_conn, [spec])  # what `lintas up` and `lintas topics sync` do
    got = await _retention_ms(kafka_conn, [DLQ_TOPIC])
    assert 0 < got[DLQ_TOPIC] <= 30 * _DAY_MS

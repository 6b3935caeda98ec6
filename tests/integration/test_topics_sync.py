"""`lintas topics sync` against the real broker: create, idempotent, grow, refuse shrink."""

from __future__ import annotations

import uuid

from lintas.kafka import KafkaConnection, create_admin
from lintas.settings import KafkaSettings
from lintas.topics import Action, TopicSpec, sync_topics


def _specs(prefix: str, partitions: int, retention: str = "86400000") -> list[TopicSpec]:
    return [
        TopicSpec(
            name=f"{prefix}.{n}",
            partitions=partitions,
            replication_factor=1,
            configs={"retention.ms": retention, "min.insync.replicas": "1"},
        )
        for n in ("a", "b")
    ]


async def _partitions(conn: KafkaConnection, names: list[str]) -> dict[str, int]:
    admin = create_admin(conn)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
        # Unknown topics come back with an error code and no partitions.
        return {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}
    finally:
        await admin.close()


async def test_sync_is_idempotent_grows_and_refuses_to_shrink(kafka_conn: KafkaConnection) -> None:
    prefix = f"synctest.{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}.a", f"{prefix}.b"]

    dry = await sync_topics(kafka_conn, _specs(prefix, 2), dry_run=True)
    assert [c.action for c in dry] == [Action.CREATE, Action.CREATE]
    assert await _partitions(kafka_conn, names) == {}, "dry run created topics"

    await sync_topics(kafka_conn, _specs(prefix, 2))
    assert await _partitions(kafka_conn, names) == {n: 2 for n in names}
    assert await sync_topics(kafka_conn, _specs(prefix, 2)) == []

    grown = await sync_topics(kafka_conn, _specs(prefix, 4, retention="172800000"))
    assert {c.action for c in grown} == {Action.ADD_PARTITIONS, Action.ALTER_CONFIG}
    assert await _partitions(kafka_conn, names) == {n: 4 for n in names}
    assert await sync_topics(kafka_conn, _specs(prefix, 4, retention="172800000")) == []

    shrink = await sync_topics(kafka_conn, _specs(prefix, 1, retention="172800000"))
    assert {c.action for c in shrink} == {Action.REFUSED_SHRINK}
    assert await _partitions(kafka_conn, names) == {n: 4 for n in names}


async def test_platform_topics_exist_after_sync(kafka_conn: KafkaConnection) -> None:
    from lintas.topics import platform_topics

    specs = platform_topics(KafkaSettings())
    await sync_topics(kafka_conn, specs)
    found = await _partitions(kafka_conn, [s.name for s in specs])
    assert set(found) == {s.name for s in specs}

"""A dead-letter replay on the real broker is recorded: who, which letters, which events."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from producer_helpers import read_topic

from lintas.audit import AuditLog, acting_as, list_entries
from lintas.kafka import KafkaConnection, create_producer
from lintas.postgres import connect
from lintas.streams.deadletters import read_dead_letters, replay_dead_letters
from lintas.streams.dlq import Reason, dead_letter_headers


async def test_a_replay_is_recorded_with_its_references_and_event_ids(
    kafka_conn: KafkaConnection, topic_factory: Callable[..., Any], fresh_db: str
) -> None:
    source = await topic_factory("test.audit.source.", partitions=1)
    dlq = await topic_factory("test.audit.dlq.", partitions=1)
    event_id = str(uuid.uuid4())
    headers = dead_letter_headers(
        [("ce_id", event_id.encode())],
        reason=Reason.INVALID_NIK,
        message="nik: 3273015209680002 is not a valid NIK",
        field="nik",
        topic=source,
        partition=0,
        offset=7,
        now=dt.datetime.now(dt.UTC),
    )
    producer = create_producer(kafka_conn)
    await producer.start()
    try:
        await producer.send_and_wait(
            dlq, key=b"3273015209680002", value=b"\x00rest", headers=headers
        )
    finally:
        await producer.stop()

    letters = await read_dead_letters(kafka_conn, dlq)
    with acting_as("portal:siti"):
        results = await replay_dead_letters(
            kafka_conn, letters, dlq_topic=dlq, audit=AuditLog(dsn=fresh_db)
        )
    assert [r.sent for r in results] == [True]
    assert [r.event_id for r in await read_topic(kafka_conn, source, partitions=1)] == [event_id]

    conn = await connect(fresh_db)
    try:
        [entry] = await list_entries(conn, actions=("dlq.replayed",))
    finally:
        await conn.close()
    assert (entry.actor, entry.target) == ("portal:siti", dlq)
    assert entry.details == {"sent": [letters[0].reference], "skipped": [], "event_ids": [event_id]}
    assert "3273015209680002" not in str(entry.details)  # the content is not in the log

"""The transactional outbox relay on real PostgreSQL and MariaDB: rows published in id order,
marked sent once Kafka has them, bad rows dead-lettered and marked, nothing sent twice."""

from __future__ import annotations

import asyncio
import decimal
import uuid
from typing import Any

import orjson
from capture_helpers import (
    PAJAK,
    CaptureEnv,
    SourceDb,
    capture_env,
    database_block,
    maria_db,
    mariadb,
    pg_db,
    running,
)

from lintas.producers.capture import outbox_ddl
from lintas.schemas import decode, example_event

__all__ = ["capture_env", "maria_db", "mariadb", "pg_db"]  # fixtures used here


def _payload(i: int) -> bytes:
    event = {**example_event(PAJAK), "ntpd": f"32739{i:011d}", "npwpd": f"P.2.{i:07d}.03.01"}
    return orjson.dumps(event, default=lambda v: str(v) if isinstance(v, decimal.Decimal) else v)


async def test_a_postgresql_outbox_is_published_in_order_and_marked_once(
    pg_db: SourceDb, capture_env: CaptureEnv
) -> None:
    await _relay(pg_db, capture_env)


async def test_a_mariadb_outbox_is_published_in_order_and_marked_once(
    maria_db: SourceDb, capture_env: CaptureEnv
) -> None:
    await _relay(maria_db, capture_env)


async def _relay(db: SourceDb, env: CaptureEnv) -> None:
    kind = db.kind
    for statement in outbox_ddl(kind).split(";"):
        if statement.strip():
            await db.execute(statement)
    marks = "%s, %s, %s" if kind == "mariadb" else "$1, $2, $3"
    insert = f"INSERT INTO lintas_outbox (event_id, event_type, payload) VALUES ({marks})"
    given = str(uuid.uuid4())
    rows: list[tuple[Any, ...]] = [
        (given if i == 0 else None, PAJAK.id, _payload(i).decode()) for i in range(200)
    ]
    rows.insert(50, (None, "bapenda.pajak_hilang.v1", _payload(999).decode()))
    rows.insert(100, (None, PAJAK.id, orjson.dumps({"ntpd": "x"}).decode()))
    if kind == "postgresql":
        rows = [(uuid.UUID(r[0]) if r[0] else None, r[1], r[2]) for r in rows]
    await db.execute(insert, many=rows)

    source = env.source_file(
        f"outbox-{kind}",
        {"opd": "bapenda", "app": "epajak", "database": database_block(db), "mechanism": "outbox"},
    )
    async with running(env, source) as cap:
        reads = await env.wait_for(PAJAK, 200, check=cap.check)
        for _ in range(100):  # the marks follow the acknowledgement
            (row,) = await db.fetch("SELECT COUNT(*) AS n FROM lintas_outbox WHERE sent_at IS NULL")
            if row["n"] == 0:
                break
            await asyncio.sleep(0.2)
    assert row["n"] == 0
    assert len(reads) == 200 and len({r.event_id for r in reads}) == 200
    assert given in {r.event_id for r in reads}
    ntpds = [decode(r.value, PAJAK.parsed_schema)["ntpd"] for r in reads]
    for partition in range(3):  # id order within each key's partition
        mine = [
            decode(r.value, PAJAK.parsed_schema)["ntpd"]
            for r in sorted((r for r in reads if r.partition == partition), key=lambda r: r.offset)
        ]
        assert mine == sorted(mine)
    assert len(set(ntpds)) == 200
    errors = await db.fetch("SELECT id, error FROM lintas_outbox WHERE error IS NOT NULL")
    assert sorted(r["id"] for r in errors) == [51, 101]
    letters = await env.read_dlq()
    assert sorted(letter.key for letter in letters) == [b"101", b"51"]

    # Started again, the relay has nothing left to send.
    async with running(env, source) as cap:
        await asyncio.sleep(2)
        cap.check()
    assert len(await env.read(PAJAK)) == 200

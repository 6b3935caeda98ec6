"""Helpers of the store sink and analytics tests: a sink running in this process, waiting
for rows, and the canonical topics of one test."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from lintas.consumers.sinks import BatchingConfig, PostgresSink, canonical_pattern
from lintas.kafka import KafkaConnection
from lintas.postgres import connect
from lintas.schemas import load_catalog
from lintas.schemas.registry import SchemaRegistryClient

CATALOG = load_catalog()
KEMATIAN = CATALOG.get("dukcapil.kematian_dicatat.v1")
BANSOS = CATALOG.get("dinsos.bansos_disalurkan.v1")
KK = CATALOG.get("dukcapil.kk_diperbarui.v1")
IZIN = CATALOG.get("dpmptsp.izin_terbit.v1")
PAJAK = CATALOG.get("bapenda.pajak_dibayar.v1")


@contextlib.asynccontextmanager
async def fresh_database(pg_dsn: str) -> AsyncIterator[str]:
    """A new, migrated database (for fixtures wider than one test); its DSN. Dropped after."""
    from lintas.migrate import migrate

    name = f"lintas_test_{uuid.uuid4().hex[:10]}"
    admin = await connect(pg_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = f"{pg_dsn.rpartition('/')[0]}/{name}"
    try:
        await migrate(dsn)
        yield dsn
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def new_prefix(letter: str = "s") -> str:
    """A topic prefix of its own for one test (``s1a2b3c4d.``)."""
    return f"{letter}{uuid.uuid4().hex[:8]}."


@contextlib.asynccontextmanager
async def running_sink(
    kafka: KafkaConnection,
    dsn: str,
    registry: SchemaRegistryClient,
    prefix: str,
    *,
    group: str | None = None,
    max_delay_s: float = 0.05,
) -> AsyncIterator[PostgresSink]:
    """A store sink reading the canonical topics under ``prefix``, in this event loop."""
    config = BatchingConfig(
        group_id=group or f"store-{prefix}",
        pattern=canonical_pattern(prefix),
        max_delay_s=max_delay_s,
        session_timeout_s=6,
        topic_refresh_s=1,
    )
    sink = PostgresSink(
        kafka,
        config,
        dsn=dsn,
        registry=registry,
        catalog=CATALOG,
        topic_prefix=prefix,
        dlq_topic=f"{prefix}lintas.dlq",
    )
    await sink.start()
    task = asyncio.create_task(sink.run())
    try:
        yield sink
    finally:
        await sink.stop()
        await task


async def wait_until(
    dsn: str, sql: str, done: Callable[[Any], bool], *, timeout: float = 90.0
) -> Any:
    """Run ``sql`` (one value) until ``done(value)`` or ``timeout``; the last value."""
    conn = await connect(dsn)
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = await conn.fetchval(sql)
            if done(value) or asyncio.get_running_loop().time() > deadline:
                return value
            await asyncio.sleep(0.2)
    finally:
        await conn.close()

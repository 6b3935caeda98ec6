"""Source: probes. Is the broker, the database and the schema registry answering, and how fast.

A probe that fails says why in one short line (exception type and message of the client
library, which hold addresses but never data).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from .kafka import KafkaInspector
from .sections import Health, Panel, Probe

__all__ = ["health_panel", "probe"]

SOURCE = "probes"
_TIMEOUT_S = 5.0


async def probe(name: str, check: Callable[[], Awaitable[tuple[int | None, str]]]) -> Probe:
    """Run ``check`` (returns a count and a detail) with a timeout; a failure is ``up=False``."""
    started = time.perf_counter()
    try:
        count, detail = await asyncio.wait_for(check(), _TIMEOUT_S)
    except Exception as exc:  # any failure means "down"; the message says which
        message = str(exc) or type(exc).__name__
        return Probe(name=name, up=False, latency_ms=None, detail=message[:200])
    latency = (time.perf_counter() - started) * 1000
    return Probe(name=name, up=True, latency_ms=latency, count=count, detail=detail)


async def health_panel(
    *, kafka: KafkaInspector | None, pool: Any, registry_url: str | None
) -> Panel[Health]:
    """Broker, database and registry, probed concurrently."""

    async def broker() -> tuple[int | None, str]:
        if kafka is None:
            raise RuntimeError("no Kafka connection configured")
        _, brokers = await kafka.ping()
        return brokers, ""

    async def database() -> tuple[int | None, str]:
        async with pool.acquire() as conn:
            version = await conn.fetchval("SHOW server_version")
        return None, f"PostgreSQL {version}"

    async def registry() -> tuple[int | None, str]:
        if registry_url is None:
            raise RuntimeError("no schema registry configured")
        async with httpx.AsyncClient(timeout=_TIMEOUT_S) as client:
            response = await client.get(f"{registry_url}/subjects")
            response.raise_for_status()
        return len(response.json()), ""

    probes = await asyncio.gather(
        probe("kafka", broker), probe("postgresql", database), probe("registry", registry)
    )
    return Panel.ok(Health(probes=list(probes)), SOURCE)

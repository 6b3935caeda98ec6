"""Measure how many ``GET /schemas/ids/{id}`` lookups per second a registry answers.

The path every consumer takes when it meets a schema id for the first time; the registry
answers it from memory after the first read, so this measures the HTTP stack.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson

__all__ = ["bench_registry_lookups"]

_BENCH_SUBJECT = "lintas.bench.registry-value"
_BENCH_SCHEMA = orjson.dumps(
    {
        "type": "record",
        "name": "BenchLookup",
        "namespace": "id.lintas.bench",
        "doc": "Registered by the registry benchmark.",
        "fields": [{"name": "nik", "type": "string", "doc": "A NIK."}],
    }
).decode()


async def bench_registry_lookups(
    url: str, *, seconds: float, concurrency: int, schema_id: int | None = None
) -> dict[str, Any]:
    """Fire ``GET /schemas/ids/{id}`` from ``concurrency`` clients for ``seconds``.

    Each worker has its own ``httpx.AsyncClient`` (its own connection), like as many
    consumer processes would. The client side runs in this one process, so on a small
    machine the number is a lower bound of what the registry can do.

    Args:
        url: the registry's base URL.
        seconds: how long to measure (after one warm-up request per worker).
        concurrency: number of concurrent clients.
        schema_id: the id to look up; by default a small schema is registered under
            ``lintas.bench.registry-value`` and its id is used.

    Returns:
        ``lookups``, ``errors``, ``seconds``, ``concurrency``, ``lookups_per_s``,
        ``p50_ms``, ``p99_ms`` and ``schema_id``.
    """
    base = url.rstrip("/")
    if schema_id is None:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            response = await http.post(
                f"/subjects/{_BENCH_SUBJECT}/versions",
                content=orjson.dumps({"schema": _BENCH_SCHEMA}),
            )
            response.raise_for_status()
            schema_id = int(response.json()["id"])
    path = f"/schemas/ids/{schema_id}"
    latencies: list[float] = []
    errors = 0
    start_gate = asyncio.Event()
    deadline = 0.0

    async def worker() -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            await http.get(path)  # warm-up: connect outside the measured window
            await start_gate.wait()
            while (now := time.perf_counter()) < deadline:
                try:
                    response = await http.get(path)
                    if response.status_code != 200:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append(time.perf_counter() - now)

    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await asyncio.sleep(0.5)  # let the workers connect and warm up
    started = time.perf_counter()
    deadline = started + seconds
    start_gate.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2)

    done = len(latencies) - errors
    return {
        "lookups": done,
        "errors": errors,
        "seconds": round(elapsed, 2),
        "concurrency": concurrency,
        "lookups_per_s": round(done / elapsed, 1) if elapsed else 0.0,
        "p50_ms": pct(0.5) if latencies else None,
        "p99_ms": pct(0.99) if latencies else None,
        "schema_id": schema_id,
    }

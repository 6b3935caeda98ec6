"""``lintas bench NAME``: benchmarks against the running stack, with their baselines.

Each benchmark measures Lintas and the baseline its issue names in the same run, and prints
its figures as one JSON object on the last line of output.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Annotated

import orjson
import typer

from ._app import app, err_console, settings_of

# name -> (module, function, what it compares); functions take keyword arguments
# `seconds` and `settings` (the CLI's, addresses included), and return the figures as a dict.
BENCHMARKS: dict[str, tuple[str, str, str]] = {
    "streams": (
        "lintas.streams.bench",
        "bench_streams",
        "stream worker vs a plain aiokafka decode-encode loop, events/s; p50/p99 at 1,000/s",
    ),
    "serde": (
        "lintas.schemas.bench",
        "bench_serde",
        "wire-format encode+decode vs fastavro schemaless; registry lookups/s",
    ),
    "webhooks": (
        "lintas.consumers.webhooks.bench",
        "bench_webhooks",
        "webhook deliveries/s to a local receiver vs raw signed POSTs (httpx)",
    ),
    "sdk": (
        "lintas.producers.bench",
        "bench_sdk",
        "producer SDK send_many vs raw aiokafka sending the same encoded records, events/s",
    ),
    "sink": (
        "lintas.consumers.sinks.bench",
        "bench_sink",
        "store sink events/s into PostgreSQL vs a raw asyncpg COPY of the same rows; "
        "freshness p50/p99 at 1,000/s",
    ),
    "gateway": (
        "lintas.producers.gateway.bench",
        "bench_gateway",
        "HTTP gateway events/s with 1,000-event batches and single-event requests, p50/p99",
    ),
    "capture": (
        "lintas.producers.capture.bench",
        "bench_capture",
        "capture changes/s per mechanism; commit-to-Kafka lag p50/p99 at 500 changes/s",
    ),
}


@app.command()
def bench(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Benchmark: " + ", ".join(BENCHMARKS))],
    seconds: Annotated[
        float, typer.Option(min=0.5, max=120, help="Time per measured loop, in seconds.")
    ] = 5.0,
) -> None:
    """Run one benchmark and print its figures; the last line is one JSON object."""
    if name not in BENCHMARKS:
        err_console.print(
            f"[red]error:[/] unknown benchmark {name!r}; choose one of: {', '.join(BENCHMARKS)}"
        )
        raise typer.Exit(2)
    module, function, what = BENCHMARKS[name]
    err_console.print(f"bench {name}: {what} ({seconds:g} s per loop) ...", highlight=False)
    run = getattr(importlib.import_module(module), function)
    figures = asyncio.run(run(seconds=seconds, settings=settings_of(ctx)))
    print(orjson.dumps(figures).decode())

"""``lintas bench NAME``: benchmarks against the running stack, with their baselines.

Each benchmark measures Lintas and the baseline its issue names in the same run, and prints
its figures as one JSON object on the last line of output.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Annotated, Any

import orjson
import typer

from ._app import app, err_console, settings_of

# name -> (module, function, what it compares); functions take keyword arguments
# `seconds` and whatever addresses they need, and return the figures as a dict.
BENCHMARKS: dict[str, tuple[str, str, str]] = {
    "serde": (
        "lintas.schemas.bench",
        "bench_serde",
        "wire-format encode+decode vs fastavro schemaless; registry lookups/s",
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
    kwargs: dict[str, Any] = {"seconds": seconds}
    if name == "serde":
        from lintas.endpoints import registry_url

        kwargs["registry_url"] = registry_url(settings_of(ctx))
    run = getattr(importlib.import_module(module), function)
    figures = asyncio.run(run(**kwargs))
    print(orjson.dumps(figures).decode())

"""``lintas registry``: serve the schema registry (``lintas up`` starts it)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from ._app import app, settings_of


@app.command()
def registry(
    ctx: typer.Context,
    port: Annotated[
        int | None,
        typer.Option("--port", min=0, max=65535, help="Port to listen on (default 8081)."),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
) -> None:
    """Serve the Confluent-compatible schema registry.

    Its database is LINTAS_PG_DSN, or the local stack's PostgreSQL; run `lintas migrate`
    first when it is not the local stack.
    """
    from lintas.endpoints import postgres_dsn
    from lintas.schemas.registry import serve

    settings = settings_of(ctx)
    # The registry needs only PostgreSQL: it never reads a Kafka credential, so the local
    # stack starts it without one.
    dsn = postgres_dsn(settings)
    asyncio.run(serve(dsn, host=host, port=settings.local.registry_port if port is None else port))

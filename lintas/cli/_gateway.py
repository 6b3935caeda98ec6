"""``lintas gateway``: the HTTP ingest gateway (``lintas up`` starts it)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from ._app import app, settings_of


@app.command()
def gateway(
    ctx: typer.Context,
    port: Annotated[
        int | None,
        typer.Option("--port", min=0, max=65535, help="Port to listen on (default 8080)."),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
) -> None:
    """Serve the HTTP ingest gateway: OPD apps in any language publish events over HTTP.

    Needs Kafka, PostgreSQL (idempotency keys) and the schema registry: LINTAS_KAFKA_BOOTSTRAP,
    LINTAS_PG_DSN and LINTAS_REGISTRY_URL, or the local stack's. Limits and timeouts:
    LINTAS_GATEWAY__* (see docs/gateway.md). API docs at /openapi.json.
    """
    import logging

    from lintas.producers.gateway import serve

    settings = settings_of(ctx)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    listen = settings.local.gateway_port if port is None else port
    asyncio.run(serve(settings, host=host, port=listen))

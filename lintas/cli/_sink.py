"""``lintas sink``: the store sink (``lintas up`` starts it), and its status."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from ._app import app, console, settings_of

sink_app = typer.Typer(
    help="Write the canonical topics into the merged store, exactly once.",
    invoke_without_command=True,
)
app.add_typer(sink_app, name="sink")


@sink_app.callback()
def sink(ctx: typer.Context) -> None:
    """Run the store sink until stopped (`lintas up` starts it).

    It reads every lintas.canonical.* topic (and new ones as they appear) and writes
    store.raw_events and one typed table per event type, with its Kafka offsets in the same
    transaction. Start more sinks with the same LINTAS_SINK__GROUP_ID to share the
    partitions; stop one with Ctrl-C or SIGTERM. See docs/store.md.
    """
    if ctx.invoked_subcommand is not None:
        return
    import logging

    from lintas.consumers.sinks.service import run_sink
    from lintas.endpoints import resolve_endpoints
    from lintas.exceptions import ConfigurationError

    settings = settings_of(ctx)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    endpoints = resolve_endpoints(settings)
    if not endpoints.registry_url:
        raise ConfigurationError("LINTAS_REGISTRY_URL", "the sink needs the schema registry")
    asyncio.run(run_sink(settings, endpoints, endpoints.registry_url))


@sink_app.command("status")
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Where the sink stands per partition, and the event types it stopped (with why)."""
    from lintas.consumers.sinks.service import sink_status
    from lintas.endpoints import resolve_endpoints
    from lintas.postgres import connect

    settings = settings_of(ctx)
    dsn = settings.pg_dsn or resolve_endpoints(settings).pg_dsn

    async def run() -> dict[str, Any]:
        conn = await connect(dsn, application_name="lintas-sink-status")
        try:
            return await sink_status(conn, settings.sink.group_id)
        finally:
            await conn.close()

    doc = asyncio.run(run())
    if as_json:
        print(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title=f"Sink {settings.sink.group_id}: stored offsets")
    for col in ("topic", "partition", "next offset", "updated"):
        table.add_column(col)
    zone = settings.display_zone
    for row in doc["offsets"]:
        when = row["updated_at"].astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")
        table.add_row(row["topic"], str(row["partition"]), str(row["next_offset"]), when)
    console.print(table)
    for row in doc["stopped"]:
        console.print(
            f"[bold red]stopped[/] {escape(row['event_type'])}: {escape(row['reason'])}",
            highlight=False,
        )

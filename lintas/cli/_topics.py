"""``lintas topics``: provision and list the platform's topics."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.table import Table

from ._app import app, console, settings_of

topics_app = typer.Typer(
    help="Create and inspect the platform's Kafka topics.", no_args_is_help=True
)
app.add_typer(topics_app, name="topics")


@topics_app.command("sync")
def sync(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan; change nothing.")
    ] = False,
    partitions: Annotated[
        int | None,
        typer.Option(min=1, max=1000, help="Partition count (default LINTAS_KAFKA__PARTITIONS)."),
    ] = None,
) -> None:
    """Create every topic the catalog, the directory and the platform need; grow, never shrink.

    Idempotent: a second run changes nothing. Topics with more partitions than asked for are
    left as they are and reported.
    """
    from lintas.endpoints import resolve_endpoints
    from lintas.topics import Action, directory_subscribers, platform_topics, sync_topics

    settings = settings_of(ctx)
    subscribers = asyncio.run(directory_subscribers(settings))
    specs = platform_topics(settings.kafka, subscribers=subscribers, partitions=partitions)
    conn = resolve_endpoints(settings).kafka
    plan = asyncio.run(sync_topics(conn, specs, dry_run=dry_run))
    verb = "would" if dry_run else "did"
    for change in plan:
        style = "yellow" if change.action is Action.REFUSED_SHRINK else "green"
        console.print(f"[{style}]{verb}[/] {change.describe()}", highlight=False)
    applied = [c for c in plan if c.action is not Action.REFUSED_SHRINK]
    done = "planned" if dry_run else "applied"
    console.print(f"{len(specs)} topics checked, {len(applied)} change(s) {done}")


@topics_app.command("list")
def list_topics(ctx: typer.Context) -> None:
    """List the platform's topics: partitions, retention and purpose."""
    from lintas.endpoints import resolve_endpoints
    from lintas.topics import Action, directory_subscribers, platform_topics, sync_topics

    settings = settings_of(ctx)
    subscribers = asyncio.run(directory_subscribers(settings))
    specs = platform_topics(settings.kafka, subscribers=subscribers)
    plan = asyncio.run(sync_topics(resolve_endpoints(settings).kafka, specs, dry_run=True))
    missing = {c.spec.name for c in plan if c.action is Action.CREATE}
    table = Table(title="Lintas topics")
    for col in ("topic", "partitions", "retention (days)", "purpose", "state"):
        table.add_column(col)
    for spec in specs:
        retention = spec.configs.get("retention.ms")
        days = f"{int(retention) / 86_400_000:g}" if retention else "compacted"
        state = "[red]missing[/]" if spec.name in missing else "ok"
        table.add_row(spec.name, str(spec.partitions), days, spec.purpose, state)
    console.print(table)

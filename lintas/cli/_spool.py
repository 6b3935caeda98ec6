"""``lintas spool``: inspect and drain producer spools."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Annotated

import orjson
import typer
from rich.table import Table

from lintas.exceptions import LintasError

from ._app import app, console, settings_of

spool_app = typer.Typer(
    help="Inspect and drain the producer SDK's store-and-forward spools.", no_args_is_help=True
)
app.add_typer(spool_app, name="spool")

NameOption = Annotated[
    str | None,
    typer.Option("--name", "-n", help="Only this spool (a producer's name, e.g. dukcapil.siak)."),
]


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    size = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024 or unit == "GiB":
            break
    return f"{size:.1f} {unit}"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@spool_app.command("status")
def status(
    ctx: typer.Context,
    name: NameOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """What each spool holds: waiting events, bytes, age, topics, refused events, owner.

    Shows counts only: keys and values hold personal data and are never printed.
    """
    from lintas.producers import spool_root, spool_status

    settings = settings_of(ctx)
    root = spool_root(settings)
    infos = spool_status(settings, name)
    if name is not None and not infos:
        raise LintasError(
            f"No spool named {name!r} under {root}.",
            hint="`lintas spool status` lists every spool.",
        )
    if as_json:
        doc = {
            "spool_dir": str(root),
            "limit_bytes": settings.producer.spool_max_bytes,
            "spools": [
                {**dataclasses.asdict(info), "rejected_records": info.rejected_records}
                for info in infos
            ],
        }
        print(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return
    if not infos:
        console.print(f"No spools under {root}.", highlight=False)
        return
    table = Table(title=f"Spools in {root}")
    for column in ("name", "slot", "waiting", "size", "oldest", "topics", "refused", "in use by"):
        table.add_column(column)
    for info in infos:
        topics = ", ".join(f"{t} ({n})" for t, n in info.topics.items()) or "-"
        refused = "; ".join(f"{n}: {reason}" for reason, n in info.rejected.items()) or "-"
        owner = "-" if info.in_use_by is None else f"pid {info.in_use_by}"
        table.add_row(
            info.name,
            str(info.slot),
            str(info.records),
            _size(info.bytes),
            _age(info.oldest_s),
            topics,
            refused,
            owner,
        )
    console.print(table)


@spool_app.command("flush")
def flush(
    ctx: typer.Context,
    name: NameOption = None,
    timeout: Annotated[
        float, typer.Option(min=1, max=3600, help="Seconds allowed per spool slot.")
    ] = 60.0,
    retry_rejected: Annotated[
        bool,
        typer.Option(
            "--retry-rejected", help="Put events the broker refused back in the queue first."
        ),
    ] = False,
    drop_rejected: Annotated[
        bool,
        typer.Option("--drop-rejected", help="Delete events the broker refused (they are lost)."),
    ] = False,
) -> None:
    """Forward what the spools hold to Kafka, oldest first, and delete it once acknowledged.

    Spools held by a running producer are left to it. Exits non-zero when something is
    still waiting afterwards (the broker away, or time ran out).
    """
    from lintas.endpoints import kafka_connection
    from lintas.producers import flush_spools

    if retry_rejected and drop_rejected:
        raise typer.BadParameter("choose --retry-rejected or --drop-rejected, not both")
    settings = settings_of(ctx)
    results = asyncio.run(
        flush_spools(
            settings,
            kafka_connection(settings),
            name=name,
            timeout=timeout,
            retry_rejected=retry_rejected,
            drop_rejected=drop_rejected,
        )
    )
    if name is not None and not results:
        raise LintasError(
            f"No spool named {name!r}.", hint="`lintas spool status` lists every spool."
        )
    incomplete = False
    for result in results:
        label = f"{result.name} slot {result.slot}"
        if result.in_use_by is not None:
            console.print(
                f"{label}: in use by pid {result.in_use_by}, which forwards it itself",
                highlight=False,
            )
            continue
        line = f"{label}: forwarded {result.forwarded}, waiting {result.remaining}"
        if result.rejected:
            line += f", refused {result.rejected}"
        if result.requeued:
            line += f" (requeued {result.requeued})"
        if result.dropped:
            line += f" (dropped {result.dropped})"
        style = "green" if not result.remaining else "yellow"
        console.print(f"[{style}]{line}[/]", highlight=False)
        if result.error:
            console.print(f"  {result.error}", highlight=False)
        incomplete = incomplete or bool(result.remaining)
    if not results:
        console.print("No spools to flush.")
    if incomplete:
        raise typer.Exit(1)

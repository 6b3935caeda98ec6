"""``lintas capture``: capture adapters for legacy applications' databases."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.markup import escape

from ._app import app, console, err_console, settings_of

capture_app = typer.Typer(
    help="Publish a legacy application's database changes as events (polling, binlog, "
    "logical decoding, outbox). See docs/capture.md.",
    no_args_is_help=True,
)
app.add_typer(capture_app, name="capture")

Configs = Annotated[list[Path], typer.Argument(help="Source files (YAML), one per database.")]


def _load(paths: list[Path]) -> list[Any]:
    from lintas.producers.capture import load_source

    configs = [load_source(path) for path in paths]
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        from lintas.producers.capture import ConfigInvalid

        twice = next(n for n in names if names.count(n) > 1)
        raise ConfigInvalid(paths[names.index(twice)], None, f"source {twice} is given twice")
    return configs


@capture_app.command("run")
def run(ctx: typer.Context, paths: Configs) -> None:
    """Capture the sources until stopped (Ctrl-C or SIGTERM), several in one process.

    Every file is checked first; a source whose database lacks a setting its mechanism
    needs is refused with the settings to change.
    """
    import logging

    from lintas.producers.capture import run_sources

    settings = settings_of(ctx)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    configs = _load(paths)
    asyncio.run(run_sources(configs, settings))


@capture_app.command("check")
def check(ctx: typer.Context, paths: Configs) -> None:
    """Check the files, the mappings' columns and the databases' settings; change nothing."""
    from lintas.producers.capture.preflight import check_source

    settings_of(ctx)
    for config in _load(paths):
        notes = asyncio.run(check_source(config))
        console.print(f"[green]ok[/] {escape(config.name)} ({config.mechanism})", highlight=False)
        for note in notes:
            console.print(f"  {escape(note)}", highlight=False)


@capture_app.command("status")
def status(
    ctx: typer.Context,
    paths: Configs,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Committed positions of each source, and the replication slot's lag."""
    from lintas.producers.capture import source_status, state_dir

    settings = settings_of(ctx)
    directory = state_dir(settings)

    async def gather() -> list[dict[str, Any]]:
        return [await source_status(c, directory) for c in _load(paths)]

    docs = asyncio.run(gather())
    if as_json:
        print(orjson.dumps(docs, option=orjson.OPT_INDENT_2, default=str).decode())
        return
    for doc in docs:
        console.print(
            f"[bold]{escape(doc['source'])}[/] {doc['mechanism']} {escape(doc['database'])}",
            highlight=False,
        )
        for name, pos in sorted(doc["positions"].items()):
            console.print(
                f"  {escape(name)}: {escape(str(pos['value']))} (at {pos['updated_at']})",
                highlight=False,
            )
        if "slot" in doc:
            console.print(f"  slot: {escape(str(doc['slot']))}", highlight=False)
        if "error" in doc:
            err_console.print(f"  [red]{escape(doc['error'])}[/]", highlight=False)


@capture_app.command("reset")
def reset(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="The source file.")],
    snapshot: Annotated[
        bool,
        typer.Option("--snapshot", help="Required: forget the positions and snapshot again."),
    ] = False,
) -> None:
    """Forget a source's positions so the next run takes a new snapshot.

    For a position that no longer exists (binlog purged, slot dropped or invalidated). The
    capture must be stopped. Logical decoding's slot is dropped and made anew. Rows are
    re-sent with their snapshot ids; unchanged ones are recognised downstream.
    """
    from lintas.producers.capture import CaptureState, Mechanism, state_dir

    if not snapshot:
        err_console.print("[red]error:[/] pass --snapshot to confirm: every row is re-sent")
        raise typer.Exit(2)
    settings = settings_of(ctx)
    (config,) = _load([path])
    state = CaptureState.open(state_dir(settings), config.name)
    try:
        if config.mechanism is Mechanism.LOGICAL:
            asyncio.run(_drop_slot(config))
        state.reset()
    finally:
        state.close()
    console.print(f"{escape(config.name)}: positions forgotten; the next run snapshots again")


async def _drop_slot(config: Any) -> None:
    from lintas.producers.capture.db import Postgres

    db = Postgres(config.database, source=config.name, application_name="lintas-capture-reset")
    await db.connect()
    try:
        await db.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE slot_name = $1",
            config.slot,
        )
    finally:
        await db.close()


@capture_app.command("outbox-ddl")
def outbox_ddl(
    dialect: Annotated[
        str, typer.Option(help="postgresql or mariadb (also MySQL).")
    ] = "postgresql",
    table: Annotated[str, typer.Option(help="Table name.")] = "lintas_outbox",
) -> None:
    """Print the outbox table to create in the application's database."""
    from lintas.producers.capture import outbox_ddl as ddl

    if dialect not in ("postgresql", "mariadb", "mysql"):
        err_console.print("[red]error:[/] --dialect is postgresql or mariadb")
        raise typer.Exit(2)
    print(ddl("postgresql" if dialect == "postgresql" else "mariadb", table), end="")

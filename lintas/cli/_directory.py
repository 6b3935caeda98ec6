"""``lintas opd|apps|subscribers|subscriptions|directory``: who is on the platform.

The ``opd`` and ``apps`` groups live in ``_apps``, ``subscribers`` and ``subscriptions`` in
``_subscribers`` (``subscriptions test`` in ``_preview``); importing them here registers
them. This module holds ``lintas directory``: the outbox and the directory as a whole
(YAML export and import through :mod:`lintas.directory.transfer`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from . import _apps, _preview, _subscribers  # noqa: F401  (registers their commands)
from ._app import app, console, err_console
from ._dir_common import (
    InvalidOption,
    JsonOption,
    Unreachable,
    change,
    escape,
    open_directory,
    print_json,
    read,
)

if TYPE_CHECKING:
    from lintas.directory import Directory, ImportPlan, ImportResult

directory_app = typer.Typer(
    help="The directory as a whole: its changes on the lintas.directory topic."
)
app.add_typer(directory_app, name="directory", no_args_is_help=True)


@directory_app.command("publish")
def publish(ctx: typer.Context, json: JsonOption = False) -> None:
    """Send every saved change not yet on lintas.directory (after Kafka was down)."""
    from aiokafka.errors import KafkaError

    async def run() -> tuple[int, int]:
        directory = await open_directory(ctx, publish=True)
        try:
            try:
                sent = await directory.publish_pending()
            except (TimeoutError, KafkaError, OSError) as exc:
                left = await directory.pending_changes()
                raise Unreachable(
                    f"Kafka did not take the directory's changes ({exc or type(exc).__name__}); "
                    f"{left} change(s) stay saved and pending.",
                    hint="Check Kafka (`lintas status`) and run `lintas directory publish` again.",
                ) from exc
            return sent, await directory.pending_changes()
        finally:
            await directory.close()

    sent, left = asyncio.run(run())
    if json:
        print_json({"published": sent, "pending": left})
    else:
        console.print(f"published {sent} change(s) to lintas.directory; {left} pending")


@directory_app.command("status")
def status(ctx: typer.Context, json: JsonOption = False) -> None:
    """Count the directory's entries and the changes not yet published."""

    async def work(d: Directory) -> dict[str, int]:
        report = await d.integration_report()
        return {
            "opds": len(await d.list_opds()),
            "applications": len(report),
            "integrated": sum(r.integrated for r in report),
            "subscribers": len(await d.list_subscribers()),
            "subscriptions": len(await d.list_subscriptions()),
            "pending_changes": await d.pending_changes(),
        }

    counts = read(ctx, work)
    if json:
        print_json(counts)
        return
    table = Table(title="Directory", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("count", justify="right")
    for what, n in counts.items():
        table.add_row(what.replace("_", " "), str(n))
    console.print(table)
    if counts["pending_changes"]:
        console.print(
            f"[yellow]{counts['pending_changes']} change(s) are saved but not yet on "
            "lintas.directory:[/] run `lintas directory publish`.",
            highlight=False,
        )


@directory_app.command("export")
def export(
    ctx: typer.Context,
    file: Annotated[
        Path | None,
        typer.Argument(help="YAML file to write; omitted or '-' writes to stdout.", dir_okay=False),
    ] = None,
) -> None:
    """Write the whole directory as YAML (no secrets), for version control or another site."""
    from lintas.directory import export_yaml

    text = read(ctx, export_yaml)
    if file is None or str(file) == "-":
        typer.echo(text, nl=False)
        return
    try:
        file.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InvalidOption("FILE", f"cannot be written: {exc.strerror}", str(file)) from exc
    err_console.print(f"exported the directory to {escape(str(file))}", highlight=False)


@directory_app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="YAML file from `lintas directory export`.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; change nothing.")
    ] = False,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Also remove what the file lacks: delete subscriptions, retire applications, "
            "disable subscribers (OPDs are never removed).",
        ),
    ] = False,
    json: JsonOption = False,
) -> None:
    """Make the directory match a YAML file: shows the diff, applies it in one transaction.

    Idempotent: importing a file the directory already matches changes nothing. New
    applications get their first API key, new webhook subscribers a signing secret; both
    are shown this once.
    """
    from lintas.directory import apply_import, load_yaml, plan_import

    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "is not UTF-8 text"
        raise InvalidOption("FILE", f"cannot be read: {reason}", str(file)) from exc
    data = load_yaml(text)

    async def work(d: Directory) -> tuple[ImportPlan, ImportResult | None]:
        plan = await plan_import(d, data, prune=prune)
        if dry_run or not plan.has_changes:
            return plan, None
        return plan, await apply_import(d, plan)

    def show(outcome: tuple[ImportPlan, ImportResult | None]) -> None:
        plan, result = outcome
        if json:
            print_json(
                {
                    "dry_run": dry_run,
                    "plan": plan.to_dict(),
                    "result": result.to_dict() if result else None,
                }
            )
            return
        typer.echo(plan.render())
        if result is None:
            if dry_run and plan.has_changes:
                console.print("dry run: nothing was changed", highlight=False)
            return
        console.print(f"applied {len(result.applied)} change(s)", highlight=False)
        for key in result.api_keys:
            console.print(f"API key of {key.app_id} (key id {key.key_id}):", highlight=False)
            typer.echo(f"    {key.token}")
        for name, secret in result.webhook_secrets.items():
            console.print(f"Webhook signing secret of {name}:", highlight=False)
            typer.echo(f"    {secret}")
        if result.api_keys or result.webhook_secrets:
            console.print(
                "[bold yellow]Store them now: they are not shown again.[/]", highlight=False
            )

    if dry_run:
        show(read(ctx, work))
    else:
        change(ctx, work, show)

"""``lintas retention``: personal data past its retention, out of the merged store."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from ._app import app, console, settings_of
from ._dir_common import JsonOption, add_row, print_json

if TYPE_CHECKING:
    from lintas.consumers.store import RetentionReport, TypePolicy
    from lintas.settings import Settings

retention_app = typer.Typer(
    help="Retention of personal data in the merged store (UU PDP): see docs/security.md."
)
app.add_typer(retention_app, name="retention", no_args_is_help=True)


async def _policy(conn: Any, settings: Settings) -> dict[str, TypePolicy]:
    from lintas.consumers.store import store_policy
    from lintas.schemas import load_catalog

    stored = [r["event_type"] for r in await conn.fetch("SELECT event_type FROM store.event_types")]
    return store_policy(settings.retention, load_catalog(), stored)


def _connect(settings: Settings) -> Any:
    from lintas.endpoints import postgres_dsn
    from lintas.postgres import connect

    return connect(postgres_dsn(settings), application_name="lintas-retention", timeout=30)


@retention_app.command("show")
def show(ctx: typer.Context, json: JsonOption = False) -> None:
    """Each event type's store retention: days, what happens then, and where it is set."""
    settings = settings_of(ctx)

    async def run() -> dict[str, TypePolicy]:
        conn = await _connect(settings)
        try:
            return await _policy(conn, settings)
        finally:
            await conn.close()

    policy = asyncio.run(run())
    if json:
        print_json(
            {
                k: {"days": p.days, "action": p.action.value, "source": p.source}
                for k, p in policy.items()
            }
        )
        return
    table = Table("event type", "days", "then", "set by")
    for type_id, p in policy.items():
        add_row(table, type_id, f"{p.days:g}", p.action.value, p.source)
    console.print(table)
    console.print(f"audit log: {settings.audit.retention_days} days")


@retention_app.command("run")
def run_command(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count the rows that are due; change nothing.")
    ] = False,
    json: JsonOption = False,
) -> None:
    """Pseudonymise or delete the store's rows past their retention, now.

    The store sink runs the same job every LINTAS_RETENTION__INTERVAL_S seconds; this
    runs it at once (after changing a retention, say). Audit entries past
    LINTAS_AUDIT__RETENTION_DAYS are deleted too. Exits 1 if another run is busy.
    """
    from lintas.consumers.store import run_retention

    settings = settings_of(ctx)

    async def run() -> RetentionReport:
        conn = await _connect(settings)
        try:
            return await run_retention(
                conn,
                await _policy(conn, settings),
                audit_days=settings.audit.retention_days,
                dry_run=dry_run,
                batch_rows=settings.retention.batch_rows,
            )
        finally:
            await conn.close()

    report = asyncio.run(run())
    if json:
        print_json(
            {
                "dry_run": report.dry_run,
                "busy": report.busy,
                "event_types": {
                    r.event_type: {"action": r.action.value, "before": r.cutoff, "rows": r.rows}
                    for r in report.results
                },
                "audit_entries": report.audit_entries,
            }
        )
    else:
        verb = "due" if dry_run else "done"
        for r in report.results:
            console.print(
                f"{r.event_type}: {r.rows} row(s) {r.action.value} {verb} "
                f"(events before {r.cutoff:%Y-%m-%d})",
                highlight=False,
            )
        entries = f"{report.audit_entries} audit entr{'y' if report.audit_entries == 1 else 'ies'}"
        console.print(
            f"{report.rows} store row(s) {verb}; {entries} older than "
            f"{settings.audit.retention_days} days {'due' if dry_run else 'deleted'}",
            highlight=False,
        )
    if report.busy:
        console.print("another retention run is busy; nothing was done", highlight=False)
        raise typer.Exit(1)

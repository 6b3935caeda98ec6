"""``lintas up|down|status|logs|migrate``: the local stack."""

from __future__ import annotations

import asyncio
import subprocess
import time
from typing import Annotated

import orjson
import typer
from rich.table import Table

from lintas.postgres import redact_dsn

from ._app import app, console, err_console, settings_of


def _stack(ctx: typer.Context):  # type: ignore[no-untyped-def]
    from lintas.deploy.local import LocalStack

    return LocalStack(
        settings_of(ctx), progress=lambda msg: err_console.print(msg, highlight=False)
    )


@app.command()
def up(ctx: typer.Context) -> None:
    """Start Kafka, PostgreSQL and the Lintas services (idempotent).

    Fetches Kafka's jars from Maven Central once, creates the PostgreSQL cluster on first
    use, applies migrations, and prints where everything listens.
    """
    started = time.monotonic()
    stack = _stack(ctx)
    stack.up()
    err_console.print(f"stack up in {time.monotonic() - started:.1f} s")
    _print_status(stack, as_json=False)


@app.command()
def down(
    ctx: typer.Context,
    purge: Annotated[bool, typer.Option("--purge", help="Also delete all local data.")] = False,
    component: Annotated[
        str | None, typer.Option("--only", help="Stop just this component (e.g. kafka).")
    ] = None,
) -> None:
    """Stop the local stack: SIGTERM, then SIGKILL after the stop timeout."""
    stopped = _stack(ctx).down(purge=purge, only=component)
    if not stopped:
        err_console.print("nothing was running")


@app.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print addresses as JSON.")] = False,
) -> None:
    """Show each component, its address and health.

    With --json, prints kafka_bootstrap, kafka_security, pg_dsn, registry_url,
    gateway_url and portal_url for other tools and tests. Exits 1 when something is down.
    """
    ok = _print_status(_stack(ctx), as_json=as_json)
    raise typer.Exit(0 if ok else 1)


def _print_status(stack, *, as_json: bool) -> bool:  # type: ignore[no-untyped-def]
    rows, doc = stack.status()
    if as_json:
        print(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return bool(doc.get("running"))
    if not rows:
        console.print(f"No local stack in {doc['data_dir']}. Start one with `lintas up`.")
        return False
    table = Table(title=f"Lintas local stack ({doc['data_dir']})")
    for col in ("component", "state", "address", "pid", "detail"):
        table.add_column(col)
    for r in rows:
        state = (
            "[green]up[/]"
            if r.running and r.healthy
            else ("[yellow]unhealthy[/]" if r.running else "[red]down[/]")
        )
        table.add_row(r.name, state, r.address or "-", str(r.pid or "-"), r.detail)
    console.print(table)
    if doc.get("pg_dsn"):
        console.print(f"pg_dsn: {redact_dsn(doc['pg_dsn'])}", highlight=False)
    sec = doc["kafka_security"]
    console.print(
        f"kafka: {doc['kafka_bootstrap']} {sec['security_protocol']} {sec['mechanism']} "
        f"user={sec['username']} password_file={sec['password_file']}",
        highlight=False,
    )
    return bool(doc.get("running"))


@app.command()
def logs(
    ctx: typer.Context,
    component: Annotated[str, typer.Argument(help="kafka, postgres, registry, ...")],
    lines: Annotated[int, typer.Option("-n", "--lines", min=1, help="Lines to show.")] = 50,
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Keep printing.")] = False,
) -> None:
    """Show a component's log."""
    path = _stack(ctx).log_path(component)
    argv = ["tail", "-n", str(lines)] + (["-F"] if follow else []) + [str(path)]
    raise typer.Exit(subprocess.call(argv))


@app.command()
def migrate(ctx: typer.Context) -> None:
    """Apply Lintas's database migrations (idempotent; each in one transaction)."""
    from lintas.endpoints import resolve_endpoints
    from lintas.migrate import migrate as run

    dsn = resolve_endpoints(settings_of(ctx)).pg_dsn
    applied = asyncio.run(run(dsn))
    if applied:
        for m in applied:
            console.print(f"applied {m.version:04d}_{m.name}")
    else:
        console.print("database is up to date")


@app.command()
def fetch(ctx: typer.Context) -> None:
    """Fetch what the local stack needs once: Kafka's jars (Maven) and PostgreSQL's binaries."""
    from lintas.deploy.local import kafka as kafka_rt
    from lintas.deploy.local import postgres as pg_rt
    from lintas.settings import KAFKA_VERSION

    settings = settings_of(ctx)
    kafka_rt.check_java()
    started = time.monotonic()
    libs = kafka_rt.ensure_jars(settings.cache_dir)
    err_console.print(
        f"Kafka {KAFKA_VERSION} jars: {libs} ({time.monotonic() - started:.1f} s)", highlight=False
    )
    bindir = pg_rt.ensure_binaries()
    err_console.print(f"PostgreSQL binaries: {bindir}", highlight=False)

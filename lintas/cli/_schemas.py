"""``lintas schemas``: the contract catalog against the schema registry."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer
from rich.table import Table

from lintas.exceptions import StackError

from ._app import app, console, err_console, settings_of

schemas_app = typer.Typer(
    help="The Avro contract catalog and the schema registry.", no_args_is_help=True
)
app.add_typer(schemas_app, name="schemas")

T = TypeVar("T")


def _registry_url(ctx: typer.Context) -> str:
    from lintas.endpoints import registry_url

    url = registry_url(settings_of(ctx))
    if url is None:
        raise StackError(
            "No schema registry is configured and none runs in the local stack.",
            hint="Run `lintas up`, or set LINTAS_REGISTRY_URL.",
        )
    return url


def _with_client(ctx: typer.Context, work: Callable[[Any], Awaitable[T]]) -> T:
    from lintas.schemas.registry import SchemaRegistryClient

    async def run() -> T:
        async with SchemaRegistryClient(_registry_url(ctx)) as client:
            return await work(client)

    return asyncio.run(run())


def _selected(event: str | None) -> list[Any]:
    from lintas.schemas import load_catalog

    catalog = load_catalog()
    return [catalog.get(event)] if event else list(catalog)


@schemas_app.command("list")
def list_schemas(ctx: typer.Context) -> None:
    """List the catalog's event types with their topics and registry state."""
    from lintas.schemas.publish import check_catalog

    checks = _with_client(ctx, lambda c: check_catalog(c, _selected(None)))
    table = Table(title="Lintas event catalog")
    for col in ("event type", "topic", "fields", "PII", "registry", "level"):
        table.add_column(col)
    for check in checks:
        et = check.event_type
        state = check.outcome.value
        if check.latest_version is not None:
            state += f" (v{check.latest_version})"
        table.add_row(
            et.id, et.topic, str(len(et.schema["fields"])), str(len(et.pii_fields)),
            state, check.level,
        )  # fmt: skip
    console.print(table)


@schemas_app.command("check")
def check(
    ctx: typer.Context,
    event: Annotated[str | None, typer.Option(help="Only this event type.")] = None,
) -> None:
    """Check every .avsc against the registry's latest version under its compatibility level.

    Exits 1 and prints the reasons when any is incompatible: use it in an OPD's own CI.
    """
    from lintas.schemas.publish import CheckOutcome, check_catalog

    checks = _with_client(ctx, lambda c: check_catalog(c, _selected(event)))
    bad = _report(checks)
    if bad:
        err_console.print(f"[red]{bad} event type(s) incompatible[/]")
        raise typer.Exit(1)
    new = sum(c.outcome is CheckOutcome.NEW for c in checks)
    console.print(f"{len(checks)} event types checked: all compatible ({new} new)")


def _report(checks: list[Any]) -> int:
    from lintas.schemas.publish import CheckOutcome

    bad = 0
    for c in checks:
        if c.outcome is CheckOutcome.INCOMPATIBLE:
            bad += 1
            console.print(f"[red]incompatible[/] {c.event_type.subject} ({c.level}):")
            for reason in c.reasons:
                console.print(f"  - {reason}", highlight=False)
        else:
            console.print(f"[green]{c.outcome.value}[/] {c.event_type.subject}", highlight=False)
    return bad


@schemas_app.command("register")
def register(
    ctx: typer.Context,
    event: Annotated[str | None, typer.Option(help="Only this event type.")] = None,
    topics: Annotated[bool, typer.Option(help="Also run `lintas topics sync`.")] = True,
) -> None:
    """Check, then register every new or changed schema of the catalog; then sync topics.

    Nothing is registered when any schema is incompatible (exit 1).
    """
    from lintas.schemas.publish import CheckOutcome, register_catalog

    checks = _with_client(ctx, lambda c: register_catalog(c, _selected(event)))
    if _report(checks):
        err_console.print("[red]nothing registered: fix the incompatible schemas first[/]")
        raise typer.Exit(1)
    changed = [c for c in checks if c.outcome is not CheckOutcome.UNCHANGED]
    for c in changed:
        console.print(f"registered {c.event_type.subject} as schema id {c.schema_id}")
    console.print(f"{len(changed)} registered, {len(checks) - len(changed)} unchanged")
    if topics:
        from lintas.cli._topics import sync

        sync(ctx, dry_run=False, partitions=None)


@schemas_app.command("show")
def show(
    ctx: typer.Context,
    subject: Annotated[str, typer.Argument(help="Subject, topic or event type id.")],
    version: Annotated[str, typer.Option(help="Version number or 'latest'.")] = "latest",
) -> None:
    """Show a registered schema: id, version, compatibility level and the schema itself."""
    from lintas.schemas import load_catalog

    if not subject.endswith("-value") and subject in load_catalog():
        subject = load_catalog().get(subject).subject

    async def work(client: Any) -> tuple[Any, str]:
        reg = await client.get_version(subject, version)
        return reg, await client.get_compatibility(subject, default_to_global=True)

    reg, level = _with_client(ctx, work)
    console.print(
        f"subject {reg.subject}  version {reg.version}  id {reg.schema_id}  level {level}",
        highlight=False,
    )
    print(orjson.dumps(orjson.loads(reg.schema), option=orjson.OPT_INDENT_2).decode())


@schemas_app.command("export")
def export(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="JSON file to write.", dir_okay=False)],
) -> None:
    """Write every subject, version, id and config of the registry to one JSON file."""
    from lintas.schemas.registry.backup import export_registry

    doc = _with_client(ctx, export_registry)
    file.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    count = sum(len(s.get("versions", [])) for s in doc.get("subjects", []))
    console.print(f"exported {count} schema versions to {file}")


@schemas_app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="JSON file from `lintas schemas export`.")],
) -> None:
    """Restore an export into an empty registry, keeping every schema id."""
    from lintas.schemas.registry.backup import import_registry

    try:
        doc = orjson.loads(file.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        err_console.print(f"[red]error:[/] cannot read {file}: {exc}")
        raise typer.Exit(1) from exc
    result = _with_client(ctx, lambda c: import_registry(c, doc))
    console.print(f"imported into the registry: {result}")

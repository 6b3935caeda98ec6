"""``lintas dlq``: list, show and replay dead letters (records the stream workers rejected)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from ._app import app, console, err_console, settings_of

dlq_app = typer.Typer(
    help="Inspect and replay the dead-letter topic (lintas.dlq).", no_args_is_help=True
)
app.add_typer(dlq_app, name="dlq")

ReasonOpt = Annotated[
    list[str] | None,
    typer.Option("--reason", "-r", help="Only this reason code (repeatable), e.g. invalid_nik."),
]
OpdOpt = Annotated[list[str] | None, typer.Option("--opd", help="Only this OPD code (repeatable).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _context(ctx: typer.Context) -> tuple[Any, str]:
    from lintas.endpoints import kafka_connection
    from lintas.streams import StreamTopics

    settings = settings_of(ctx)
    return kafka_connection(settings), StreamTopics(settings.streams.topic_prefix).dlq


def _row(letter: Any) -> dict[str, Any]:
    return {
        "reference": letter.reference,
        "time": letter.time.isoformat() if letter.time else None,
        "reason": letter.reason,
        "field": letter.field,
        "message": letter.message,
        "opd": letter.opd,
        "event_type": letter.event_type,
        "event_id": letter.event_id,
        "source": f"{letter.topic}:{letter.partition}:{letter.offset}",
    }


@dlq_app.command("list")
def list_letters(
    ctx: typer.Context,
    reason: ReasonOpt = None,
    opd: OpdOpt = None,
    limit: Annotated[
        int, typer.Option(min=0, help="Show at most this many records, newest first.")
    ] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Count dead letters by reason and OPD, and list the newest ones."""
    from lintas.streams.deadletters import read_dead_letters, select_dead_letters, summarize

    conn, topic = _context(ctx)
    letters = asyncio.run(read_dead_letters(conn, topic))
    chosen = select_dead_letters(letters, reasons=reason or (), opds=opd or ())
    newest = sorted(chosen, key=lambda x: (x.time is None, x.time), reverse=True)[:limit]
    counts = summarize(chosen)
    if as_json:
        doc = {
            "topic": topic,
            "total": len(chosen),
            "by_reason_and_opd": [
                {"reason": r, "opd": o, "count": n} for (r, o), n in sorted(counts.items())
            ],
            "records": [_row(x) for x in newest],
        }
        print(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return
    summary = Table(title=f"{topic}: {len(chosen)} dead letter(s)")
    for col in ("reason", "opd", "count"):
        summary.add_column(col)
    for (r, o), n in sorted(counts.items()):
        summary.add_row(r, o, str(n))
    console.print(summary)
    if not newest:
        return
    table = Table(title="newest")
    for col in ("ref", "time", "reason", "event type", "event id", "field", "message"):
        table.add_column(col, overflow="fold")
    for x in newest:
        when = x.time.strftime("%Y-%m-%d %H:%M:%S") if x.time else "-"
        table.add_row(
            x.reference,
            when,
            x.reason,
            x.event_type or "-",
            x.event_id or "-",
            x.field or "-",
            x.message[:120],
        )
    console.print(table)


@dlq_app.command("show")
def show(
    ctx: typer.Context,
    reference: Annotated[
        str, typer.Argument(help="partition:offset in the dead-letter topic, or an event id.")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Show one dead letter: why it was rejected, its headers, its value decoded if it can be."""
    from lintas.endpoints import registry_url
    from lintas.schemas import AvroDeserializer
    from lintas.schemas.registry import SchemaRegistryClient
    from lintas.streams.deadletters import decode_dead_letter, find_dead_letter, read_dead_letters

    conn, topic = _context(ctx)
    url = registry_url(settings_of(ctx))

    async def run() -> tuple[Any, Any]:
        letter = find_dead_letter(await read_dead_letters(conn, topic), reference, topic)
        if url is None:
            return letter, None
        async with SchemaRegistryClient(url) as registry:
            return letter, await decode_dead_letter(letter, AvroDeserializer(registry))

    letter, decoded = asyncio.run(run())
    doc = _row(letter)
    doc["key"] = letter.key.decode(errors="replace") if letter.key is not None else None
    doc["headers"] = {k: v.decode(errors="replace") for k, v in letter.headers}
    if decoded is None:
        doc["value"] = {"problem": "no schema registry known (set LINTAS_REGISTRY_URL)"}
    else:
        doc["value"] = {
            "schema_id": decoded.schema_id,
            "record": decoded.record,
            "problem": decoded.problem,
            "preview_hex": decoded.preview,
        }
    if as_json:
        print(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return
    console.print(f"[bold]{topic} {letter.reference}[/]: {letter.reason}", highlight=False)
    for key in ("message", "field", "source", "time", "opd", "event_type", "event_id", "key"):
        console.print(f"  {key}: {doc[key]}", highlight=False)
    console.print("  headers:", highlight=False)
    for name, value in doc["headers"].items():
        console.print(f"    {name}: {value}", highlight=False)
    console.print("  value:", highlight=False)
    console.print_json(orjson.dumps(doc["value"]).decode())


@dlq_app.command("replay")
def replay(
    ctx: typer.Context,
    references: Annotated[
        list[str] | None,
        typer.Argument(help="partition:offset of dead letters to replay (or use the filters)."),
    ] = None,
    reason: ReasonOpt = None,
    opd: OpdOpt = None,
    event_id: Annotated[
        list[str] | None, typer.Option("--event-id", help="Only this event id (repeatable).")
    ] = None,
    replay_all: Annotated[
        bool, typer.Option("--all", help="Replay every dead letter (no filter).")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be replayed; send nothing.")
    ] = False,
) -> None:
    """Send dead letters back to their source topics, after the cause is fixed.

    Records keep their key, value and headers (their event id too); the workers process them
    again, and dedup keeps one canonical event if one was accepted before.
    """
    from lintas.streams.deadletters import (
        read_dead_letters,
        replay_dead_letters,
        select_dead_letters,
    )

    if not (references or reason or opd or event_id or replay_all):
        err_console.print(
            "[red]error:[/] say what to replay: references, --reason, --opd, --event-id or --all"
        )
        raise typer.Exit(2)
    conn, topic = _context(ctx)
    letters = asyncio.run(read_dead_letters(conn, topic))
    chosen = select_dead_letters(
        letters,
        reasons=reason or (),
        opds=opd or (),
        event_ids=event_id or (),
        references=references or (),
    )
    if dry_run:
        for x in chosen:
            console.print(f"would replay {x.reference} ({x.reason}) to {x.topic}", highlight=False)
        console.print(f"{len(chosen)} dead letter(s) selected")
        return
    from lintas.audit import AuditLog
    from lintas.endpoints import postgres_dsn

    audit = AuditLog(dsn=postgres_dsn(settings_of(ctx)))
    results = asyncio.run(replay_dead_letters(conn, chosen, dlq_topic=topic, audit=audit))
    for r in results:
        style = "green" if r.sent else "yellow"
        verb = "replayed" if r.sent else "skipped"
        console.print(f"[{style}]{verb}[/] {r.letter.reference} -> {r.detail}", highlight=False)
    sent = sum(r.sent for r in results)
    console.print(f"{sent} of {len(chosen)} dead letter(s) replayed")
    if sent < len(chosen):
        raise typer.Exit(1)

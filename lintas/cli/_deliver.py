"""``lintas deliver``: the webhook deliverer, its health, its log, and redelivery."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from typing import Annotated, Any

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from lintas.settings import Settings

from ._app import app, console, settings_of

deliver_app = typer.Typer(
    help="Deliver routed events to webhook subscribers (signed, retried, dead-lettered).",
    invoke_without_command=True,
)
app.add_typer(deliver_app, name="deliver")


@deliver_app.callback()
def deliver(ctx: typer.Context) -> None:
    """Run the webhook deliverer until stopped (`lintas up` starts it).

    It reads the delivery topics of the directory's webhook subscribers, POSTs each event
    signed per Standard Webhooks, retries with backoff and dead-letters what cannot be
    delivered. See docs/webhooks.md.
    """
    if ctx.invoked_subcommand is not None:
        return
    import logging

    from lintas.consumers.webhooks import run_deliverer

    settings = settings_of(ctx)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(run_deliverer(settings))


def _dsn(settings: Settings) -> str:
    from lintas.endpoints import resolve_endpoints

    return settings.pg_dsn or resolve_endpoints(settings).pg_dsn


def _json(value: Any) -> None:
    def default(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return dataclasses.asdict(v)
        if isinstance(v, bytes):
            return v.decode("utf-8", errors="replace")
        raise TypeError(type(v).__name__)

    print(orjson.dumps(value, default=default, option=orjson.OPT_INDENT_2).decode())


def _when(value: dt.datetime | None, settings: Settings) -> str:
    if value is None:
        return "-"
    return value.astimezone(settings.display_zone).strftime("%Y-%m-%d %H:%M:%S %Z")


@deliver_app.command("status")
def status(
    ctx: typer.Context,
    subscriber: Annotated[str | None, typer.Argument(help="Only this subscriber.")] = None,
    window: Annotated[
        int, typer.Option("--window", min=1, max=10_080, help="Minutes the counts look back.")
    ] = 60,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Per webhook subscriber: pending, delivered, failed, dead-lettered, latency, circuit."""
    from lintas.consumers.webhooks import subscriber_health
    from lintas.postgres import connect

    settings = settings_of(ctx)

    async def run() -> list[Any]:
        conn = await connect(_dsn(settings), application_name="lintas-deliver-status")
        try:
            return await subscriber_health(
                conn, subscriber=subscriber, window=dt.timedelta(minutes=window)
            )
        finally:
            await conn.close()

    health = asyncio.run(run())
    if as_json:
        _json(health)
        return
    table = Table(title=f"Webhook delivery, last {window} min")
    for col in ("subscriber", "status", "pending", "delivered", "failed", "dead", "p95 ms"):
        table.add_column(col)
    table.add_column("circuit")
    table.add_column("last error")
    for h in health:
        p95 = f"{h.latency_p95_ms:.0f}" if h.latency_p95_ms is not None else "-"
        table.add_row(
            h.subscriber,
            h.status.value,
            str(h.pending),
            str(h.delivered),
            str(h.failed_attempts),
            str(h.dead),
            p95,
            h.circuit,
            escape(h.last_error or "-"),
        )
    console.print(table)


@deliver_app.command("log")
def log(
    ctx: typer.Context,
    subscriber: Annotated[str, typer.Argument(help="The webhook subscriber.")],
    event_id: Annotated[
        str | None, typer.Option("--event-id", help="Only this event (its ce_id).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The latest delivery attempts: status code, latency, outcome, error."""
    from lintas.postgres import connect

    settings = settings_of(ctx)

    async def run() -> list[dict[str, Any]]:
        conn = await connect(_dsn(settings), application_name="lintas-deliver-log")
        try:
            rows = await conn.fetch(
                "SELECT event_id, attempt, attempted_at, status_code, latency_ms, outcome, error "
                "FROM lintas.webhook_attempts WHERE subscriber = $1 "
                "AND ($2::text IS NULL OR event_id = $2) ORDER BY attempted_at DESC, id DESC "
                "LIMIT $3",
                subscriber,
                event_id,
                limit,
            )
            return [dict(r) for r in rows]
        finally:
            await conn.close()

    rows = asyncio.run(run())
    if as_json:
        _json([{**r, "attempted_at": r["attempted_at"].isoformat()} for r in rows])
        return
    table = Table(title=f"Delivery attempts to {subscriber}")
    for col in ("time", "event id", "attempt", "status", "ms", "outcome", "error"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            _when(r["attempted_at"], settings),
            r["event_id"],
            str(r["attempt"]),
            str(r["status_code"] or "-"),
            f"{r['latency_ms']:.0f}",
            r["outcome"],
            escape(r["error"] or ""),
        )
    console.print(table)


@deliver_app.command("redeliver")
def redeliver(
    ctx: typer.Context,
    subscriber: Annotated[str, typer.Argument(help="The webhook subscriber.")],
    event_ids: Annotated[
        list[str] | None,
        typer.Option("--event-id", help="An event to redeliver (its ce_id); repeatable."),
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Every event in the subscriber's dead-letter topic.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Queue dead-lettered events again (from lintas.deliver.<subscriber>.dlq).

    Events delivered or pending since are left alone, so running it twice sends nothing
    twice. The running deliverer picks the events up at once.
    """
    if not event_ids and not all_:
        raise typer.BadParameter("name events with --event-id, or take them all with --all")
    from lintas.consumers._records import RecordDecoder
    from lintas.consumers.webhooks import DeliveryQueue, NotAWebhookSubscriber
    from lintas.consumers.webhooks import redeliver as redeliver_events
    from lintas.directory import DeliveryMode, Directory
    from lintas.endpoints import resolve_endpoints
    from lintas.postgres import create_pool
    from lintas.schemas.registry import SchemaRegistryClient

    settings = settings_of(ctx)
    endpoints = resolve_endpoints(settings)
    if not endpoints.registry_url:
        from lintas.exceptions import ConfigurationError

        raise ConfigurationError("LINTAS_REGISTRY_URL", "redelivery needs the schema registry")
    registry_url = endpoints.registry_url

    async def run() -> Any:
        async with await Directory.open(
            settings, pg_dsn=endpoints.pg_dsn, publish=False
        ) as directory:
            sub = await directory.get_subscriber(subscriber)
        if sub.mode is not DeliveryMode.WEBHOOK:
            raise NotAWebhookSubscriber(subscriber, "receives from Kafka, not by webhook")
        pool = await create_pool(endpoints.pg_dsn, application_name="lintas-deliver-redeliver")
        try:
            async with SchemaRegistryClient(registry_url) as registry:
                return await redeliver_events(
                    endpoints.kafka,
                    DeliveryQueue(pool, group_id=settings.deliver.group_id),
                    RecordDecoder(registry),
                    subscriber,
                    horizon=settings.deliver.retry_horizon_s,
                    event_ids=None if all_ else set(event_ids or ()),
                )
        finally:
            await pool.close()

    report = asyncio.run(run())
    if as_json:
        _json(report)
        return
    console.print(
        f"{report.read} dead letter(s) read, {report.chosen} event(s) chosen: "
        f"{report.requeued} queued again, {report.skipped} left alone (pending or delivered)",
        highlight=False,
    )
    for missing in report.missing:
        console.print(f"[yellow]no dead letter for event {escape(missing)}[/]", highlight=False)

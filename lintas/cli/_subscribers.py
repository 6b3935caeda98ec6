"""``lintas subscribers`` and ``lintas subscriptions``: who receives which events, and why."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from lintas.directory import DeliveryMode, SubscriberStatus, SubscriptionStatus

from ._app import app, console, err_console
from ._dir_common import (
    JsonOption,
    add_row,
    change,
    field_table,
    parse_duration,
    parse_where,
    print_json,
    read,
    when,
)
from ._kafka_access import (
    SUBSCRIBER_NOTE,
    KafkaAccess,
    access_json,
    issue_password,
    report,
    resync_access,
)

if TYPE_CHECKING:
    from lintas.directory import Directory, Subscriber, Subscription

subscribers_app = typer.Typer(
    help="Systems that receive events: through their own Kafka topic or a signed webhook."
)
subscriptions_app = typer.Typer(
    help="What each subscriber receives, why (UU 27/2022 PDP) and which fields of it."
)
app.add_typer(subscribers_app, name="subscribers", no_args_is_help=True)
app.add_typer(subscriptions_app, name="subscriptions", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="The subscriber's name.")]
SubscriptionArg = Annotated[str, typer.Argument(help="The subscription's name.")]
_SECRET_ONCE = (
    "Store it now: it is not shown again. The receiver verifies each delivery's "
    "webhook-signature header (Standard Webhooks) with it."
)


# -- subscribers ----------------------------------------------------------------------------


def _print_secret(secret: str, *, title: str) -> None:
    console.print(f"{title}:", highlight=False)
    typer.echo(f"\n    {secret}\n")
    console.print(f"[bold yellow]{_SECRET_ONCE}[/]", highlight=False)


def _show_subscriber(sub: Subscriber, subscriptions: list[Subscription] | None = None) -> None:
    rows: list[tuple[str, Any]] = [
        ("name", sub.name),
        ("OPD", sub.opd),
        ("application", sub.app_id),
        ("mode", sub.mode.value),
        ("webhook URL", sub.webhook_url),
        ("delivery topic", sub.delivery_topic),
        ("contact", sub.contact),
        ("status", sub.status.value),
    ]
    if subscriptions is not None:
        rows.append(("subscriptions", [s.name for s in subscriptions]))
    field_table(f"Subscriber {sub.name}", rows)


@subscribers_app.command("add")
def subscribers_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Short name: lowercase, digits, '-' (sikesra).")],
    opd: Annotated[str, typer.Option(help="Code of the OPD that owns the receiving system.")],
    mode: Annotated[
        DeliveryMode,
        typer.Option(help="kafka: it reads lintas.deliver.<name>; webhook: Lintas POSTs to it."),
    ],
    url: Annotated[
        str | None, typer.Option(help="The webhook URL (http or https); webhook mode only.")
    ] = None,
    app_id: Annotated[
        str | None,
        typer.Option("--app", help="The application this subscriber is, if it is one."),
    ] = None,
    contact: Annotated[str | None, typer.Option(help="Who to call about deliveries.")] = None,
    json: JsonOption = False,
) -> None:
    """Register a subscriber; a webhook subscriber's signing secret is shown this once.

    A Kafka subscriber gets its principal, Read on its own delivery topic and groups, and a
    SCRAM password, shown this once.
    """
    data = {
        "name": name,
        "opd": opd,
        "mode": mode,
        "webhook_url": url,
        "app_id": app_id,
        "contact": contact,
    }

    async def work(d: Directory) -> tuple[Subscriber, str | None, KafkaAccess | None]:
        sub, secret = await d.add_subscriber(data)
        access = None
        if sub.mode is DeliveryMode.KAFKA:
            # After the commit: a Kafka subscriber reads its topic under its own principal.
            access = await asyncio.to_thread(issue_password, ctx, sub)
        return sub, secret, access

    def show(result: tuple[Subscriber, str | None, KafkaAccess | None]) -> None:
        sub, secret, access = result
        if json:
            print_json({"subscriber": sub, "signing_secret": secret, "kafka": access_json(access)})
            return
        _show_subscriber(sub)
        if secret is not None:
            _print_secret(secret, title="Webhook signing secret")

    result = change(ctx, work, show)
    report(
        result[2],
        json=json,
        retry=f"lintas subscribers kafka-password {name}",
        note=SUBSCRIBER_NOTE,
    )


@subscribers_app.command("list")
def subscribers_list(
    ctx: typer.Context,
    opd: Annotated[str | None, typer.Option(help="Only the subscribers of this OPD.")] = None,
    json: JsonOption = False,
) -> None:
    """List subscribers with their delivery mode and status."""
    subs = read(ctx, lambda d: d.list_subscribers(opd=opd))
    if json:
        print_json(
            [{**s.model_dump(mode="json"), "delivery_topic": s.delivery_topic} for s in subs]
        )
        return
    table = Table(title=f"Subscribers ({len(subs)})")
    for col in ("name", "OPD", "mode", "webhook URL", "status", "contact"):
        table.add_column(col)
    for s in subs:
        add_row(table, s.name, s.opd, s.mode.value, s.webhook_url, s.status.value, s.contact)
    console.print(table)


@subscribers_app.command("show")
def subscribers_show(ctx: typer.Context, name: NameArg, json: JsonOption = False) -> None:
    """Show a subscriber and the names of its subscriptions (never its secrets)."""

    async def work(d: Directory) -> tuple[Subscriber, list[Subscription]]:
        return await d.get_subscriber(name), await d.list_subscriptions(subscriber=name)

    sub, subscriptions = read(ctx, work)
    if json:
        print_json(
            {
                "subscriber": sub,
                "delivery_topic": sub.delivery_topic,
                "subscriptions": [s.name for s in subscriptions],
            }
        )
    else:
        _show_subscriber(sub, subscriptions)


@subscribers_app.command("rotate-secret")
def subscribers_rotate_secret(
    ctx: typer.Context,
    name: NameArg,
    overlap: Annotated[
        str,
        typer.Option(
            metavar="DURATION",
            help="How long the old secrets keep signing too, so the receiver can switch: "
            "30m, 24h, 7d; 0 ends them now.",
        ),
    ] = "7d",
    json: JsonOption = False,
) -> None:
    """Issue a new webhook signing secret (shown once); old ones end after the overlap."""
    period = parse_duration("--overlap", overlap)

    def show(secret: str) -> None:
        ends = dt.datetime.now(dt.UTC) + period
        if json:
            print_json({"subscriber": name, "signing_secret": secret, "old_secrets_end_at": ends})
            return
        _print_secret(secret, title=f"New signing secret of {name}")
        if period:
            console.print(
                f"Until {when(ctx, ends)} each delivery is signed with the old and the new "
                "secret; the receiver may switch at any time before then.",
                highlight=False,
            )

    change(ctx, lambda d: d.rotate_webhook_secret(name, overlap=period), show)


def _set_subscriber_status(
    ctx: typer.Context, name: str, status: SubscriberStatus, json: bool
) -> None:
    async def work(d: Directory) -> tuple[Subscriber, KafkaAccess | None]:
        sub = await d.set_subscriber_status(name, status)
        access = None
        if sub.mode is DeliveryMode.KAFKA:
            # A disabled Kafka subscriber loses its Read rights; resuming gives them back.
            access = await asyncio.to_thread(resync_access, ctx, sub)
        return sub, access

    def show(result: tuple[Subscriber, KafkaAccess | None]) -> None:
        sub, access = result
        if json:
            print_json({**sub.model_dump(mode="json"), "kafka": access_json(access)})
        else:
            console.print(f"subscriber {sub.name} is {sub.status.value}", highlight=False)

    result = change(ctx, work, show)
    report(result[1], json=json, retry="lintas security sync")


@subscribers_app.command("pause")
def subscribers_pause(ctx: typer.Context, name: NameArg, json: JsonOption = False) -> None:
    """Pause deliveries to a subscriber (status paused) until it is resumed."""
    _set_subscriber_status(ctx, name, SubscriberStatus.PAUSED, json)


@subscribers_app.command("resume")
def subscribers_resume(ctx: typer.Context, name: NameArg, json: JsonOption = False) -> None:
    """Resume deliveries to a paused or disabled subscriber."""
    _set_subscriber_status(ctx, name, SubscriberStatus.ACTIVE, json)


@subscribers_app.command("disable")
def subscribers_disable(ctx: typer.Context, name: NameArg, json: JsonOption = False) -> None:
    """Disable a subscriber (status disabled), e.g. a system being replaced; resume undoes it."""
    _set_subscriber_status(ctx, name, SubscriberStatus.DISABLED, json)


@subscribers_app.command("kafka-password")
def subscribers_kafka_password(ctx: typer.Context, name: NameArg, json: JsonOption = False) -> None:
    """Issue a new Kafka (SASL/SCRAM) password for a Kafka subscriber, shown once; the previous
    one ends at once. Also puts its ACLs in place (its own delivery topic and groups)."""
    sub = read(ctx, lambda d: d.get_subscriber(name))
    access = issue_password(ctx, sub)
    if json:
        print_json({"subscriber": name, "kafka": access_json(access)})
    report(
        access,
        json=json,
        retry=f"lintas subscribers kafka-password {name}",
        note=SUBSCRIBER_NOTE,
    )


# -- subscriptions --------------------------------------------------------------------------


def _filter_text(sub: Subscription) -> str:
    parts = [f"{k}={v}" for k, v in sub.filter.equals.items()]
    if sub.filter.kode_wilayah_prefix:
        parts.append(f"kode_wilayah in {sub.filter.kode_wilayah_prefix}")
    return ", ".join(parts) or "(every event)"


def _show_subscription(sub: Subscription) -> None:
    field_table(
        f"Subscription {sub.name}",
        [
            ("name", sub.name),
            ("subscriber", sub.subscriber),
            ("event types", list(sub.event_types)),
            ("filter", _filter_text(sub)),
            ("fields delivered", list(sub.fields)),
            ("purpose", sub.purpose),
            ("status", sub.status.value),
        ],
    )


def _filter(event_types: list[str], where: list[str] | None, wilayah: str | None) -> dict[str, Any]:
    from lintas.directory import matched_event_types
    from lintas.schemas import load_catalog

    matched = matched_event_types(event_types, load_catalog())
    flt: dict[str, Any] = {"equals": parse_where(where or [], matched)}
    if wilayah is not None:
        flt["kode_wilayah_prefix"] = wilayah
    return flt


EventTypeOption = Annotated[
    list[str],
    typer.Option(
        "--event-type",
        metavar="GLOB",
        help="Event type id or glob: dukcapil.kematian_dicatat.v1, dukcapil.* (repeatable).",
    ),
]
FieldOption = Annotated[
    list[str],
    typer.Option(
        "--field",
        metavar="FIELD",
        help="A top-level field the subscriber may receive (repeatable); '*' for every field. "
        "Everything else is dropped before delivery.",
    ),
]
PurposeOption = Annotated[
    str,
    typer.Option(help="Legal basis and purpose of the processing (UU 27/2022 PDP), in words."),
]
WhereOption = Annotated[
    list[str] | None,
    typer.Option(
        "--where",
        metavar="FIELD=VALUE",
        help="Only events whose field has this value, e.g. jenis_kelamin=PEREMPUAN (repeatable; "
        "all must hold).",
    ),
]
WilayahOption = Annotated[
    str | None,
    typer.Option(
        metavar="PREFIX",
        help="Only events whose kode_wilayah is in this Kemendagri region, e.g. 32.73.01.",
    ),
]


@subscriptions_app.command("add")
def subscriptions_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Short name: lowercase, digits, '-'.")],
    subscriber: Annotated[str, typer.Option(help="The subscriber that receives the events.")],
    event_type: EventTypeOption,
    field: FieldOption,
    purpose: PurposeOption,
    where: WhereOption = None,
    wilayah: WilayahOption = None,
    json: JsonOption = False,
) -> None:
    """Subscribe a subscriber to event types, with a filter and the fields it may receive."""
    data = {
        "name": name,
        "subscriber": subscriber,
        "event_types": event_type,
        "fields": field,
        "purpose": purpose,
        "filter": _filter(event_type, where, wilayah),
    }

    def show(sub: Subscription) -> None:
        if json:
            print_json(sub)
        else:
            _show_subscription(sub)

    change(ctx, lambda d: d.add_subscription(data), show)


@subscriptions_app.command("update")
def subscriptions_update(
    ctx: typer.Context,
    name: SubscriptionArg,
    event_type: Annotated[
        list[str] | None,
        typer.Option("--event-type", metavar="GLOB", help="Replace the event types."),
    ] = None,
    field: Annotated[
        list[str] | None,
        typer.Option("--field", metavar="FIELD", help="Replace the fields delivered ('*': all)."),
    ] = None,
    purpose: Annotated[str | None, typer.Option(help="Replace the purpose.")] = None,
    where: WhereOption = None,
    wilayah: WilayahOption = None,
    clear_filter: Annotated[
        bool, typer.Option("--clear-filter", help="Drop the filter: every event of the types.")
    ] = False,
    json: JsonOption = False,
) -> None:
    """Change a subscription; running workers route by the new rule within seconds."""

    async def work(d: Directory) -> Subscription:
        current = await d.get_subscription(name)
        changes: dict[str, Any] = {}
        types = event_type or list(current.event_types)
        if event_type:
            changes["event_types"] = event_type
        if field:
            changes["fields"] = field
        if purpose is not None:
            changes["purpose"] = purpose
        if clear_filter or where or wilayah is not None:
            base = {} if clear_filter else current.filter.model_dump()
            new = _filter(types, where, wilayah)
            if not where:
                new["equals"] = base.get("equals", {})
            if wilayah is None:
                new["kode_wilayah_prefix"] = base.get("kode_wilayah_prefix")
            changes["filter"] = new
        if not changes:
            err_console.print("nothing to change: give at least one option (see --help)")
            raise typer.Exit(1)
        return await d.update_subscription(name, **changes)

    def show(sub: Subscription) -> None:
        if json:
            print_json(sub)
        else:
            _show_subscription(sub)

    change(ctx, work, show)


@subscriptions_app.command("list")
def subscriptions_list(
    ctx: typer.Context,
    subscriber: Annotated[
        str | None, typer.Option(help="Only the subscriptions of this subscriber.")
    ] = None,
    json: JsonOption = False,
) -> None:
    """List subscriptions: event types, filter, fields delivered, purpose."""
    subs = read(ctx, lambda d: d.list_subscriptions(subscriber=subscriber))
    if json:
        print_json(subs)
        return
    table = Table(title=f"Subscriptions ({len(subs)})")
    for col in ("name", "subscriber", "event types", "filter", "fields", "status", "purpose"):
        table.add_column(col, overflow="fold")
    for s in subs:
        add_row(
            table, s.name, s.subscriber, "\n".join(s.event_types), _filter_text(s),
            ", ".join(s.fields), s.status.value, s.purpose,
        )  # fmt: skip
    console.print(table)


@subscriptions_app.command("show")
def subscriptions_show(ctx: typer.Context, name: SubscriptionArg, json: JsonOption = False) -> None:
    """Show one subscription in full."""
    sub = read(ctx, lambda d: d.get_subscription(name))
    if json:
        print_json(sub)
    else:
        _show_subscription(sub)


@subscriptions_app.command("remove")
def subscriptions_remove(
    ctx: typer.Context, name: SubscriptionArg, json: JsonOption = False
) -> None:
    """Remove a subscription; its subscriber stops receiving those events."""

    def show(sub: Subscription) -> None:
        if json:
            print_json({"removed": sub})
        else:
            console.print(f"subscription {sub.name} removed", highlight=False)

    change(ctx, lambda d: d.remove_subscription(name), show)


def _set_subscription_status(
    ctx: typer.Context, name: str, status: SubscriptionStatus, json: bool
) -> None:
    def show(sub: Subscription) -> None:
        if json:
            print_json(sub)
        else:
            console.print(f"subscription {sub.name} is {sub.status.value}", highlight=False)

    change(ctx, lambda d: d.update_subscription(name, status=status), show)


@subscriptions_app.command("pause")
def subscriptions_pause(
    ctx: typer.Context, name: SubscriptionArg, json: JsonOption = False
) -> None:
    """Stop routing by this subscription until it is resumed (nothing is queued for it)."""
    _set_subscription_status(ctx, name, SubscriptionStatus.PAUSED, json)


@subscriptions_app.command("resume")
def subscriptions_resume(
    ctx: typer.Context, name: SubscriptionArg, json: JsonOption = False
) -> None:
    """Route by a paused subscription again."""
    _set_subscription_status(ctx, name, SubscriptionStatus.ACTIVE, json)

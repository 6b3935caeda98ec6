"""``lintas opd`` and ``lintas apps``: OPDs, their applications and the applications' API keys."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from lintas.directory import AppStatus, ConfirmationRequired, IntegrationMethod

from ._app import app, console, err_console, settings_of
from ._dir_common import (
    JsonOption,
    add_row,
    change,
    escape,
    field_table,
    parse_duration,
    print_json,
    read,
    when,
)
from ._kafka_access import (
    KafkaAccess,
    access_json,
    app_principal,
    issue_password,
    remove_access,
    report,
    talks_to_kafka,
)

if TYPE_CHECKING:
    from lintas.directory import (
        ApiKeyInfo,
        Application,
        Directory,
        IntegrationStatus,
        IssuedKey,
        Opd,
    )

opd_app = typer.Typer(help="The OPDs (Organisasi Perangkat Daerah) on the platform.")
apps_app = typer.Typer(help="OPD applications that publish events, and their API keys.")
app.add_typer(opd_app, name="opd", no_args_is_help=True)
app.add_typer(apps_app, name="apps", no_args_is_help=True)

_STORE_IT = (
    "Store it now: it is not shown again (Lintas keeps only its hash). Give it to the OPD "
    "developer over a secure channel."
)


# -- OPDs -----------------------------------------------------------------------------------


@opd_app.command("add")
def opd_add(
    ctx: typer.Context,
    code: Annotated[
        str, typer.Argument(help="Short code, the prefix of its topics (dukcapil, dinsos, ...).")
    ],
    name: Annotated[
        str, typer.Option(help="Official name, e.g. 'Dinas Kependudukan dan Pencatatan Sipil'.")
    ],
    pemda_name: Annotated[
        str | None,
        typer.Option(help="The Pemda it belongs to (default: LINTAS_DIRECTORY__PEMDA_NAME)."),
    ] = None,
    pemda_code: Annotated[
        str | None,
        typer.Option(
            help="Kemendagri code of that Pemda, e.g. 32.73 (default: "
            "LINTAS_DIRECTORY__PEMDA_CODE)."
        ),
    ] = None,
    contact: Annotated[
        str | None, typer.Option(help="Who to call about it (name, e-mail, phone).")
    ] = None,
    json: JsonOption = False,
) -> None:
    """Register an OPD (its applications and subscribers can then be added)."""
    data = {
        "code": code,
        "name": name,
        "pemda_name": pemda_name,
        "pemda_code": pemda_code,
        "contact": contact,
    }

    def show(opd: Opd) -> None:
        if json:
            print_json(opd)
        else:
            console.print(
                f"OPD [bold]{opd.code}[/] added: "
                + escape(f"{opd.name} ({opd.pemda_name}, {opd.pemda_code})"),
                highlight=False,
            )

    change(ctx, lambda d: d.add_opd(data), show)


@opd_app.command("list")
def opd_list(ctx: typer.Context, json: JsonOption = False) -> None:
    """List the OPDs with their Pemda and number of applications."""

    async def work(d: Directory) -> tuple[list[Opd], list[Application]]:
        return await d.list_opds(), await d.list_applications()

    opds, apps = read(ctx, work)
    counts = {o.code: sum(a.opd == o.code for a in apps) for o in opds}
    if json:
        print_json([{**o.model_dump(mode="json"), "applications": counts[o.code]} for o in opds])
        return
    table = Table(title=f"OPDs ({len(opds)})")
    for col in ("code", "name", "Pemda", "contact", "apps"):
        table.add_column(col)
    for o in opds:
        pemda = f"{o.pemda_name} ({o.pemda_code})"
        add_row(table, o.code, o.name, pemda, o.contact, counts[o.code])
    console.print(table)


# -- applications -------------------------------------------------------------------------


def _print_key(key: IssuedKey, *, title: str) -> None:
    console.print(f"{title} (key id {key.key_id}):", highlight=False)
    typer.echo(f"\n    {key.token}\n")
    console.print(f"[bold yellow]{_STORE_IT}[/]", highlight=False)


def _key_json(key: IssuedKey) -> dict[str, Any]:
    return {"key_id": key.key_id, "token": key.token, "expires_at": key.expires_at}


@apps_app.command("add")
def apps_add(
    ctx: typer.Context,
    app_id: Annotated[
        str, typer.Argument(metavar="ID", help="Short stable id: lowercase, digits, '-' (siak).")
    ],
    name: Annotated[str, typer.Option(help="The application's name, e.g. 'SIAK Terpusat'.")],
    opd: Annotated[str, typer.Option(help="Code of the OPD that owns it (see `lintas opd list`).")],
    method: Annotated[
        IntegrationMethod,
        typer.Option(help="How it publishes: the Python SDK, the HTTP gateway, or capture."),
    ],
    pse_number: Annotated[
        str | None,
        typer.Option(help="Kominfo PSE registration number, e.g. 000123.01/DJAI.PSE/07/2022."),
    ] = None,
    platform: Annotated[
        str | None, typer.Option(help="Language/platform, e.g. 'PHP 7 / MySQL'.")
    ] = None,
    owner_contact: Annotated[
        str | None, typer.Option(help="The developer or vendor to call about it.")
    ] = None,
    status: Annotated[
        AppStatus,
        typer.Option(help="Stage: planned or testing ('integrated' is computed from events)."),
    ] = AppStatus.PLANNED,
    produces: Annotated[
        list[str] | None,
        typer.Option(
            "--produces",
            metavar="TYPE",
            help="An event type it publishes, e.g. dukcapil.kematian_dicatat.v1 (repeatable).",
        ),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Register an application and issue its first API key (shown this once).

    An application that talks to Kafka itself (method sdk or capture) also gets its Kafka
    principal, its ACLs (its own OPD's topics only) and a SCRAM password, shown this once.
    """
    data = {
        "id": app_id,
        "name": name,
        "opd": opd,
        "method": method,
        "pse_number": pse_number,
        "platform": platform,
        "owner_contact": owner_contact,
        "status": status,
        "produces": produces or [],
        "kafka_principal": app_principal(ctx, app_id, method),
    }

    async def work(d: Directory) -> tuple[Application, IssuedKey | None, KafkaAccess | None]:
        application, key = await d.add_application(data)
        access = None
        if application.kafka_principal is not None:
            # After the commit: the key is shown even if Kafka cannot be reached.
            access = await asyncio.to_thread(issue_password, ctx, application)
        return application, key, access

    def show(result: tuple[Application, IssuedKey | None, KafkaAccess | None]) -> None:
        application, key, access = result
        if json:
            print_json(
                {
                    "application": application,
                    "api_key": _key_json(key) if key else None,
                    "kafka": access_json(access),
                }
            )
            return
        _show_application(ctx, application, None)
        if key is not None:
            _print_key(key, title="API key")

    result = change(ctx, work, show)
    report(result[2], json=json, retry=f"lintas apps kafka-password {app_id}")


@apps_app.command("list")
def apps_list(
    ctx: typer.Context,
    opd: Annotated[str | None, typer.Option(help="Only the applications of this OPD.")] = None,
    json: JsonOption = False,
) -> None:
    """List applications with their status ('integrated' when events flowed recently)."""

    async def work(d: Directory) -> tuple[list[Application], dict[str, IntegrationStatus]]:
        apps = await d.list_applications(opd=opd)
        report = {r.app_id: r for r in await d.integration_report()}
        return apps, report

    apps, report = read(ctx, work)
    if json:
        print_json([_app_json(a, report.get(a.id)) for a in apps])
        return
    table = Table(title=f"Applications ({len(apps)})")
    for col in ("id", "name", "OPD", "method", "PSE number", "status", "last event"):
        table.add_column(col)
    for a in apps:
        r = report.get(a.id)
        last = _last_event(r)
        add_row(
            table, a.id, a.name, a.opd, a.method.value, a.pse_number,
            _status_text(r.status if r else a.status), when(ctx, last),
        )  # fmt: skip
    console.print(table)


def _last_event(r: IntegrationStatus | None) -> dt.datetime | None:
    if r is None:
        return None
    return max((t for t in (r.last_produced_at, r.last_received_at) if t), default=None)


def _status_text(status: AppStatus) -> Text:
    colours = {AppStatus.INTEGRATED: "green", AppStatus.RETIRED: "dim"}
    return Text(status.value, style=colours.get(status, ""))


def _app_json(a: Application, r: IntegrationStatus | None) -> dict[str, Any]:
    return {
        **a.model_dump(mode="json"),
        "computed_status": (r.status if r else a.status).value,
        "integrated": bool(r and r.integrated),
        "last_produced_at": r.last_produced_at if r else None,
        "last_received_at": r.last_received_at if r else None,
    }


def _key_state(k: ApiKeyInfo, now: dt.datetime) -> str:
    if k.revoked_at is not None:
        return "revoked"
    if k.expires_at is not None and k.expires_at <= now:
        return "expired"
    return "active"


def _show_application(
    ctx: typer.Context, a: Application, r: IntegrationStatus | None, window: int | None = None
) -> None:
    rows: list[tuple[str, Any]] = [
        ("id", a.id),
        ("name", a.name),
        ("OPD", a.opd),
        ("method", a.method.value),
        ("PSE number", a.pse_number),
        ("platform", a.platform),
        ("owner contact", a.owner_contact),
        ("status", _status_text(r.status if r else a.status)),
        ("stage set", a.status.value),
        ("produces", list(a.produces)),
        ("Kafka principal", a.kafka_principal),
    ]
    if r is not None:
        days = f" (last {window} days)" if window else ""
        rows += [
            ("last produced", when(ctx, r.last_produced_at)),
            ("last received", when(ctx, r.last_received_at)),
            (f"produced{days}", r.produced_in_window),
            (f"received{days}", r.received_in_window),
            ("integrated", "yes" if r.integrated else "no"),
        ]
    field_table(f"Application {a.id}", rows)


@apps_app.command("show")
def apps_show(
    ctx: typer.Context,
    app_id: Annotated[str, typer.Argument(metavar="ID", help="The application's id.")],
    json: JsonOption = False,
) -> None:
    """Show an application: fields, API keys (never their secrets) and its recent activity."""

    async def work(d: Directory) -> tuple[Application, IntegrationStatus | None, list[ApiKeyInfo]]:
        application = await d.get_application(app_id)
        report = [r for r in await d.integration_report() if r.app_id == app_id]
        return application, report[0] if report else None, await d.list_keys(app_id)

    application, r, keys = read(ctx, work)
    window = settings_of(ctx).directory.integrated_window_days
    now = dt.datetime.now(dt.UTC)
    if json:
        print_json(
            {
                "application": application,
                "computed_status": (r.status if r else application.status).value,
                "integrated": bool(r and r.integrated),
                "activity": {
                    "window_days": window,
                    "last_produced_at": r.last_produced_at if r else None,
                    "last_received_at": r.last_received_at if r else None,
                    "produced_in_window": r.produced_in_window if r else 0,
                    "received_in_window": r.received_in_window if r else 0,
                },
                "keys": [{**k.model_dump(mode="json"), "state": _key_state(k, now)} for k in keys],
            }
        )
        return
    _show_application(ctx, application, r, window)
    table = Table(title=f"API keys of {app_id}", title_justify="left")
    for col in ("key id", "state", "created", "expires", "revoked", "last used"):
        table.add_column(col)
    for k in keys:
        add_row(
            table, k.key_id, _key_state(k, now), when(ctx, k.created_at),
            when(ctx, k.expires_at), when(ctx, k.revoked_at), when(ctx, k.last_used_at),
        )  # fmt: skip
    console.print(table)


OverlapOption = Annotated[
    str,
    typer.Option(
        metavar="DURATION",
        help="How long the old ones keep working so the other side can switch: 30m, 24h, "
        "7d; 0 ends them now.",
    ),
]


@apps_app.command("rotate-key")
def apps_rotate_key(
    ctx: typer.Context,
    app_id: Annotated[str, typer.Argument(metavar="ID", help="The application's id.")],
    overlap: OverlapOption = "7d",
    json: JsonOption = False,
) -> None:
    """Issue a new API key (shown once); the old keys expire after the overlap."""
    period = parse_duration("--overlap", overlap)

    def show(key: IssuedKey) -> None:
        ends = dt.datetime.now(dt.UTC) + period
        if json:
            print_json({"app_id": app_id, "api_key": _key_json(key), "old_keys_expire_at": ends})
            return
        _print_key(key, title=f"New API key of {app_id}")
        if period:
            console.print(
                f"The previous keys keep working until {when(ctx, ends)}; switch the app "
                "to the new key before then.",
                highlight=False,
            )
        else:
            console.print("The previous keys stopped working now.", highlight=False)

    change(ctx, lambda d: d.issue_key(app_id, overlap=period), show)


@apps_app.command("revoke")
def apps_revoke(
    ctx: typer.Context,
    app_id: Annotated[str, typer.Argument(metavar="ID", help="The application's id.")],
    key: Annotated[
        str | None,
        typer.Option(metavar="KEYID", help="Only this key (see `lintas apps show`); default all."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Revoke even the last key of an application that used it recently."
        ),
    ] = False,
    json: JsonOption = False,
) -> None:
    """Revoke an application's keys immediately (a leaked key); its events are then refused.

    Without --key the application's Kafka password is deleted too.
    """

    async def work(d: Directory) -> tuple[list[str], KafkaAccess | None]:
        revoked = await d.revoke_keys(app_id, key, force=force)
        access = None
        application = await d.get_application(app_id)
        if key is None and talks_to_kafka(application):
            # Every key means the Kafka password too; its ACLs stay for a new password.
            access = await asyncio.to_thread(remove_access, ctx, application, keep_acls=True)
        return revoked, access

    def show(result: tuple[list[str], KafkaAccess | None]) -> None:
        revoked, access = result
        if json:
            print_json({"app_id": app_id, "revoked": revoked, "kafka": access_json(access)})
            return
        if revoked:
            console.print(f"revoked {len(revoked)} key(s) of {app_id}: {', '.join(revoked)}")
        else:
            console.print(f"{app_id} has no active key to revoke")
        if access is not None and access.principal is not None and access.error is None:
            console.print(
                f"Kafka refuses {access.principal} from now on (its password is deleted); "
                f"`lintas apps kafka-password {app_id}` issues a new one.",
                highlight=False,
            )

    try:
        result = change(ctx, work, show)
        report(result[1], json=json, retry=f"lintas apps revoke {app_id}")
    except ConfirmationRequired as exc:
        err_console.print(f"[bold yellow]warning:[/] {escape(exc.message)}", highlight=False)
        err_console.print(
            "Nothing was revoked. Repeat with --force if that is intended, or issue a new "
            "key first (`lintas apps rotate-key`).",
            highlight=False,
        )
        raise typer.Exit(1) from exc


@apps_app.command("retire")
def apps_retire(
    ctx: typer.Context,
    app_id: Annotated[str, typer.Argument(metavar="ID", help="The application's id.")],
    json: JsonOption = False,
) -> None:
    """Mark an application retired, revoke all its keys and remove its Kafka password and
    ACLs (it stays in the history)."""

    async def work(d: Directory) -> tuple[Application, KafkaAccess | None]:
        application = await d.retire_application(app_id)
        access = None
        if talks_to_kafka(application):
            access = await asyncio.to_thread(remove_access, ctx, application, keep_acls=False)
        return application, access

    def show(result: tuple[Application, KafkaAccess | None]) -> None:
        application, access = result
        if json:
            print_json({**application.model_dump(mode="json"), "kafka": access_json(access)})
            return
        console.print(f"{application.id} is retired; its keys are revoked", highlight=False)
        if access is not None and access.principal is not None and access.error is None:
            console.print(
                f"Kafka: {access.principal} has no password and no ACL any more",
                highlight=False,
            )

    result = change(ctx, work, show)
    report(result[1], json=json, retry="lintas security sync")


@apps_app.command("update")
def apps_update(
    ctx: typer.Context,
    app_id: Annotated[str, typer.Argument(metavar="ID", help="The application's id.")],
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    pse_number: Annotated[str | None, typer.Option(help="Kominfo PSE registration number.")] = None,
    platform: Annotated[str | None, typer.Option(help="Language/platform.")] = None,
    method: Annotated[
        IntegrationMethod | None, typer.Option(help="How it publishes: sdk, gateway, capture.")
    ] = None,
    owner_contact: Annotated[str | None, typer.Option(help="Developer or vendor contact.")] = None,
    status: Annotated[
        AppStatus | None,
        typer.Option(help="Stage: planned, testing or retired ('integrated' is computed)."),
    ] = None,
    produces: Annotated[
        list[str] | None,
        typer.Option(
            "--produces",
            metavar="TYPE",
            help="Replace the event types it publishes (repeatable).",
        ),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Change fields of an application (not its id or OPD); only the options given change."""
    changes: dict[str, Any] = {
        k: v
        for k, v in {
            "name": name,
            "pse_number": pse_number,
            "platform": platform,
            "method": method,
            "owner_contact": owner_contact,
            "status": status,
            "produces": produces,
        }.items()
        if v is not None
    }
    if not changes:
        err_console.print("nothing to change: give at least one option (see --help)")
        raise typer.Exit(1)

    def show(application: Application) -> None:
        if json:
            print_json(application)
        else:
            _show_application(ctx, application, None)

    change(ctx, lambda d: d.update_application(app_id, **changes), show)


# -- Kafka access (lintas.security) ---------------------------------------------------------


@apps_app.command("kafka-password")
def apps_kafka_password(
    ctx: typer.Context,
    app_id: Annotated[str, typer.Argument(metavar="ID", help="The application's id.")],
    json: JsonOption = False,
) -> None:
    """Issue a new Kafka (SASL/SCRAM) password, shown once; the previous one ends at once.

    Also puts the application's ACLs in place (its own OPD's topics only).
    """
    application = read(ctx, lambda d: d.get_application(app_id))
    access = issue_password(ctx, application)
    if json:
        print_json({"app_id": app_id, "kafka": access_json(access)})
    report(access, json=json, retry=f"lintas apps kafka-password {app_id}")


@apps_app.command("export-k8s")
def apps_export_k8s(
    ctx: typer.Context,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")
    ] = None,
    cluster: Annotated[
        str, typer.Option(help="The Strimzi Kafka cluster's name (label strimzi.io/cluster).")
    ] = "lintas",
    namespace: Annotated[
        str | None, typer.Option(help="Kubernetes namespace of the KafkaUsers.")
    ] = "lintas",
    services: Annotated[
        bool,
        typer.Option("--services/--no-services", help="Also the platform services' users (svc-*)."),
    ] = False,
) -> None:
    """Write a Strimzi KafkaUser (SCRAM-SHA-512 and ACLs) per application and subscriber.

    The same principals and ACLs `lintas security sync` sets on other brokers; apply the
    file with `kubectl apply -f`.
    """
    from lintas.security import SecurityContext, export_kafka_users

    data = read(ctx, lambda d: d.export_data())
    text = export_kafka_users(
        SecurityContext.from_settings(settings_of(ctx)),
        data,
        cluster=cluster,
        namespace=namespace,
        services=services,
    )
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        err_console.print(f"wrote {out}", highlight=False)

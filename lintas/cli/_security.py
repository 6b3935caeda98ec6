"""``lintas security``: the broker's principals and ACLs, reconciled with the directory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ._app import app, console, err_console, settings_of
from ._dir_common import JsonOption, add_row, print_json, read

if TYPE_CHECKING:
    from lintas.security import SecurityPlan

security_app = typer.Typer(
    help="Kafka principals, ACLs and credentials of applications, subscribers and services."
)
app.add_typer(security_app, name="security", no_args_is_help=True)


def _plan_json(plan: SecurityPlan, *, applied: bool) -> dict[str, object]:
    return {
        "applied": applied,
        "acls_add": [r.describe() for r in plan.acls.add],
        "acls_remove": [r.describe() for r in plan.acls.remove],
        "credentials_deleted": list(plan.drop_credentials),
        "service_credentials_set": list(plan.service_credentials),
        "credentials_missing": list(plan.missing_credentials),
    }


@security_app.command("sync")
def security_sync(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan without changing anything.")
    ] = False,
    json: JsonOption = False,
) -> None:
    """Make the broker's principals and ACLs match the directory (idempotent).

    Adds missing ACLs, removes ACLs and credentials that are no longer needed (retired
    applications, disabled subscribers), and gives platform services their credentials
    (written to owner-only files, never printed). Only Lintas's own principals (app-*,
    sub-*, svc-*) are touched.
    """
    from lintas.endpoints import kafka_connection
    from lintas.security import SecurityContext, sync_security

    settings = settings_of(ctx)
    security = SecurityContext.from_settings(settings)
    data = read(ctx, lambda d: d.export_data())
    plan = sync_security(security, kafka_connection(settings), data, dry_run=dry_run)
    if json:
        print_json(_plan_json(plan, applied=not dry_run))
        return
    for line in plan.lines():
        console.print(line, highlight=False, markup=False)
    if plan.empty:
        console.print("the broker matches the directory: nothing to change")
    elif dry_run:
        console.print("dry run: nothing was changed", highlight=False)
    if plan.service_credentials and not dry_run:
        console.print(f"service passwords are in {security.password_dir}", highlight=False)


@security_app.command("principals")
def security_principals(ctx: typer.Context, json: JsonOption = False) -> None:
    """List the principals the directory and the services need, with their ACLs."""
    from lintas.security import SecurityContext

    security = SecurityContext.from_settings(settings_of(ctx))
    data = read(ctx, lambda d: d.export_data())
    grants = sorted(security.grants(data).values(), key=lambda g: (g.kind, g.user))
    if json:
        print_json(
            [
                {
                    "principal": g.principal,
                    "kind": g.kind.value,
                    "owner": g.owner,
                    "acls": [r.describe() for r in sorted(g.rules)],
                }
                for g in grants
            ]
        )
        return
    table = Table(title=f"Kafka principals ({len(grants)})")
    for col in ("principal", "kind", "owner", "ACLs"):
        table.add_column(col, overflow="fold")
    for g in grants:
        rules = "\n".join(r.describe().split(" ", 1)[1] for r in sorted(g.rules)) or "(none)"
        add_row(table, g.principal, g.kind.value, g.owner, rules)
    console.print(table)


@security_app.command("ca")
def security_ca(
    out: Annotated[Path, typer.Option("--out", help="Directory for ca.crt, broker.pem, ...")],
    host: Annotated[
        list[str] | None,
        typer.Option(
            "--host",
            metavar="NAME",
            help="A name or address clients dial (repeatable); default 127.0.0.1, localhost.",
        ),
    ] = None,
) -> None:
    """Make (or keep) a local CA and a broker certificate, e.g. for docker-compose.

    `lintas up` does this by itself for the local broker. Keys are written owner-only.
    """
    from lintas.security import ensure_local_tls
    from lintas.security.tls import DEFAULT_HOSTS

    made = ensure_local_tls(out, hosts=tuple(host) if host else DEFAULT_HOSTS)
    files = made.files
    state = "made" if made.made_broker_cert else "kept (still valid)"
    err_console.print(f"CA certificate: {files.ca_cert}", highlight=False)
    err_console.print(f"broker keystore (PEM): {files.broker_keystore} ({state})", highlight=False)

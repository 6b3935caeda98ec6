"""``lintas portal``: serve the portal; ``lintas portal user``: its sign-in accounts."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ._app import app, console, err_console, settings_of

portal_app = typer.Typer(
    help="The web portal: dashboard, event catalog, applications, subscriptions.",
    invoke_without_command=True,
)
app.add_typer(portal_app, name="portal")
user_app = typer.Typer(help="Portal sign-in accounts (operator or viewer).", no_args_is_help=True)
portal_app.add_typer(user_app, name="user")


@portal_app.callback()
def portal(
    ctx: typer.Context,
    port: Annotated[
        int | None,
        typer.Option("--port", min=0, max=65535, help="Port to listen on (default 8000)."),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
) -> None:
    """Serve the portal (without a sub-command), in Bahasa Indonesia with an English switch.

    Its sources are LINTAS_PG_DSN, LINTAS_KAFKA_BOOTSTRAP and LINTAS_REGISTRY_URL, or the
    local stack's; `lintas up` starts it and creates the first operator.
    """
    if ctx.invoked_subcommand is not None:
        return
    from lintas.portal import PortalConfig, serve

    settings = settings_of(ctx)
    config = PortalConfig.from_settings(settings)
    asyncio.run(serve(config, host=host, port=settings.local.portal_port if port is None else port))


def _dsn(ctx: typer.Context) -> str:
    settings = settings_of(ctx)
    if settings.pg_dsn:
        return settings.pg_dsn
    from lintas.endpoints import resolve_endpoints

    return resolve_endpoints(settings).pg_dsn


async def _with_users(dsn: str, work):  # type: ignore[no-untyped-def]
    from lintas.portal import PortalUsers
    from lintas.postgres import create_pool

    pool = await create_pool(dsn, application_name="lintas-portal-cli", max_size=1)
    try:
        return await work(PortalUsers(pool))
    finally:
        await pool.close()


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name: lowercase letters, digits, . _ -")],
    role: Annotated[str, typer.Option("--role", help="operator or viewer.")] = "viewer",
    password_file: Annotated[
        Path | None,
        typer.Option(
            "--password-file",
            exists=True,
            dir_okay=False,
            help="Read the password from this file (first line) instead of prompting.",
        ),
    ] = None,
    reset: Annotated[
        bool, typer.Option("--reset", help="Set a new password and role for an existing user.")
    ] = False,
) -> None:
    """Create a portal user (operator: manages apps, keys, replay; viewer: reads only)."""
    if password_file is not None:
        lines = password_file.read_text().splitlines()
        password = lines[0] if lines else ""
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    asyncio.run(_with_users(_dsn(ctx), lambda u: u.add(name, role, password, reset=reset)))
    console.print(f"portal user {name!r} ({role}) {'updated' if reset else 'created'}")


@user_app.command("list")
def user_list(ctx: typer.Context) -> None:
    """List portal users with their role and last sign-in."""
    users = asyncio.run(_with_users(_dsn(ctx), lambda u: u.list_users()))
    table = Table(title="Portal users")
    for col in ("name", "role", "created", "last sign-in", "state"):
        table.add_column(col)
    for user in users:
        table.add_row(
            user.name,
            user.role.value,
            f"{user.created_at:%Y-%m-%d %H:%M}",
            f"{user.last_login_at:%Y-%m-%d %H:%M}" if user.last_login_at else "-",
            "disabled" if user.disabled else "enabled",
        )
    console.print(table)


@user_app.command("disable")
def user_disable(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user to disable.")],
    enable: Annotated[bool, typer.Option("--enable", help="Enable the user again.")] = False,
) -> None:
    """Disable a portal user (their open sessions end at the next request), or --enable."""
    asyncio.run(_with_users(_dsn(ctx), lambda u: u.set_disabled(name, not enable)))
    err_console.print(f"portal user {name!r} {'enabled' if enable else 'disabled'}")

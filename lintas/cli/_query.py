"""``lintas query``: SQL against the merged store, as an analyst."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer

from ._app import app, settings_of


@app.command()
def query(
    ctx: typer.Context,
    sql: Annotated[
        str, typer.Argument(help="One SQL statement, e.g. SELECT * FROM analytics.daily_counts.")
    ],
    fmt: Annotated[
        str,
        typer.Option("--format", "-f", help="table, csv or json."),
    ] = "table",
    pii: Annotated[
        bool,
        typer.Option("--pii", help="Run as lintas_analyst_pii: personal data unmasked."),
    ] = False,
) -> None:
    """Run one statement as an analyst (lintas_analyst, or lintas_analyst_pii with --pii).

    Analysts read the views of the analytics schema; personal data is masked without --pii.
    What the role may not do (any write included) is refused by the database, and the
    command exits with status 1. See docs/analysts.md.
    """
    from urllib.parse import urlsplit

    from lintas.audit import AuditLog
    from lintas.consumers.analytics import (
        QUERY_LOGINS,
        OutputFormat,
        QueryAudit,
        connect_analyst,
        render,
        run_query,
    )
    from lintas.endpoints import resolve_endpoints

    try:
        output = OutputFormat(fmt)
    except ValueError:
        raise typer.BadParameter("choose table, csv or json", param_hint="--format") from None
    settings = settings_of(ctx)
    dsn = settings.pg_dsn or resolve_endpoints(settings).pg_dsn
    login = settings.sink.query_pii_dsn if pii else settings.sink.query_dsn
    # Recorded with the platform's credential: the analyst's login cannot write the log.
    audit = QueryAudit(
        log=AuditLog(dsn=dsn),
        login=(urlsplit(login).username if login else None) or QUERY_LOGINS[pii][0],
        pii=pii,
    )

    async def run() -> None:
        conn = await connect_analyst(
            dsn,
            pii=pii,
            login_dsn=login,
            timezone=settings.timezone,
            statement_timeout_s=settings.sink.query_timeout_s,
        )
        try:
            result = await run_query(conn, sql, audit=audit)
        finally:
            await conn.close()
        render(result, output, sys.stdout, zone=settings.display_zone)

    asyncio.run(run())

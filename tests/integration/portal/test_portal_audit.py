"""The audit page: operators see who did what (the platform's entries and the SQL pgaudit
logged in analysts' own sessions), viewers do not; sign-ins are recorded."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from portal_support import OPERATOR, VIEWER, Portal, add_user, portal_env, signed_in

from lintas.audit import acting_as, import_pgaudit, list_entries
from lintas.consumers.store import connect_store, prepare_store
from lintas.directory import Directory
from lintas.endpoints import Endpoints
from lintas.migrate import migrate
from lintas.portal.testing import PortalProcess, sign_in
from lintas.postgres import connect
from lintas.schemas import load_catalog

pytestmark = pytest.mark.asyncio(loop_scope="session")

NIK = "3273015209680002"


def _audit_page(env: dict[str, str], log_path: Path) -> str:
    """The pgaudit entries as an operator of a portal over ``env`` sees them."""
    with PortalProcess(env, log_path=log_path) as process:
        operator = httpx.Client(base_url=process.url, timeout=30)
        assert sign_in(operator, *OPERATOR).status_code == 303
        return operator.get("/audit", params={"source": "pgaudit"}).text


def _rows(html: str) -> list[str]:
    """The audit table's rows: ``data-action`` values, newest first."""
    import re

    return re.findall(r'<tr data-key="\d+" data-action="([a-z_.]+)">', html)


async def test_sign_ins_and_key_changes_are_shown_to_operators_only(
    portal: Portal, directory: Directory
) -> None:
    refused = sign_in(httpx.Client(base_url=portal.url, timeout=30), OPERATOR[0], "wrong-password")
    assert refused.status_code == 401
    await directory.add_opd({"code": "dukcapil", "name": "Disdukcapil"})
    with acting_as("os:budi-ops"):
        _, key = await directory.add_application(
            {"id": "siak", "name": "SIAK", "opd": "dukcapil", "method": "gateway"}
        )
    assert key is not None

    viewer = signed_in(portal, VIEWER)
    assert viewer.get("/audit").status_code == 403
    assert 'data-testid="nav-audit"' not in viewer.get("/").text

    operator = signed_in(portal, OPERATOR)
    assert 'data-testid="nav-audit"' in operator.get("/").text
    page = operator.get("/audit")
    assert page.status_code == 200
    html = page.text
    assert "Log audit" in html and "Kunci API diterbitkan" in html  # Indonesian first
    assert _rows(html)[:4] == [
        "portal.sign_in",  # the operator, just now
        "portal.sign_in",  # the viewer
        "api_key.issued",
        "portal.sign_in_failed",
    ]
    assert "os:budi-ops" in html and f"portal-user:{OPERATOR[0]}" in html
    assert key.token not in html and key.token.rpartition("_")[2] not in html
    # This portal cannot read the database's log: it says so instead of showing nothing.
    assert 'data-testid="audit-note"' in html
    only = operator.get("/audit", params={"group": "sign_in"}).text
    assert set(_rows(only)) == {"portal.sign_in", "portal.sign_in_failed"}

    conn = await connect(portal.dsn)
    try:
        entries = await list_entries(conn, actions=("portal.",))
    finally:
        await conn.close()
    failed = next(e for e in entries if e.action == "portal.sign_in_failed")
    assert failed.actor == "web:127.0.0.1" and failed.target == f"portal-user:{OPERATOR[0]}"
    assert "wrong-password" not in str([e.details for e in entries])


async def test_sql_an_analyst_ran_in_psql_is_logged_by_the_database_and_shown(
    private_stack: Any,
    endpoints: Endpoints,
    registry_url: str,
    topic_factory: Callable[..., Any],
    tmp_path: Path,
) -> None:
    """pgaudit from Debian's package, preloaded by the local runner: an analyst's own
    session (no Lintas code involved) ends up on the audit page."""
    state = await asyncio.to_thread(private_stack.up_postgres)
    dsn = private_stack.admin_dsn(state)
    await migrate(dsn)
    store = await connect_store(dsn, application_name="test-pgaudit")
    try:
        await prepare_store(store, catalog=load_catalog(), timezone="Asia/Jakarta")
        assert await store.fetchval("SHOW shared_preload_libraries") == "pgaudit"
        await store.execute(
            "CREATE ROLE budi_analis LOGIN PASSWORD 'kata-sandi-analis-1' IN ROLE lintas_analyst"
        )
    finally:
        await store.close()
    analyst = dsn.replace("lintas:", "budi_analis:", 1)
    analyst = analyst.replace(analyst.split(":")[2].split("@")[0], "kata-sandi-analis-1", 1)

    async def session(*statements: str) -> None:
        conn = await connect(analyst)
        try:
            for sql in statements:
                # A refusal is what is being audited, not a failure of the test.
                with contextlib.suppress(asyncpg.PostgresError):
                    await conn.fetch(sql)
        finally:
            await conn.close()

    # Before the login has session audit: pgaudit's object audit still sees the view read.
    await session(
        f"SELECT count(*) FROM analytics.events WHERE subject = '{NIK}'",
        "SELECT * FROM store.raw_events",
    )
    log_dir = private_stack.data_dir / "postgres" / "log"
    conn = await connect(dsn)
    try:
        report = await import_pgaudit(conn, log_dir)
        assert report.logins_configured == 1  # budi_analis got pgaudit.log from now on
        await session("SELECT current_date AS hari_ini")  # no view: session audit only
        entries = await list_entries(conn, source="pgaudit", actor="pg:budi_analis")
    finally:
        await conn.close()

    data_dir = private_stack.data_dir
    env = portal_env(endpoints, dsn, data_dir, registry_url) | {
        "LINTAS_PORTAL__DIRECTORY_TOPIC": await topic_factory(
            "test.audit.directory.", partitions=1, **{"cleanup.policy": "compact"}
        ),
        "LINTAS_PORTAL__METRICS_TOPIC": await topic_factory("test.audit.metrics."),
        "LINTAS_PORTAL__DLQ_TOPIC": await topic_factory("test.audit.dlq."),
    }
    add_user(env, tmp_path, OPERATOR[0], "operator", OPERATOR[1])
    html = await asyncio.to_thread(_audit_page, env, tmp_path / "portal.log")
    assert 'data-testid="audit-note"' not in html  # this portal reads the database's log
    assert "pg:budi_analis" in html
    assert "analytics.events" in html and "hari_ini" in html
    assert "SQL analis ditolak" in html and "permission denied for schema store" in html
    assert NIK not in html  # masked on the page ...
    full = {e.action: e for e in entries}
    assert NIK in full["analyst.sql"].details["sql"]  # ... kept whole in the log
    assert full["analyst.sql_refused"].details["sql"] == "SELECT * FROM store.raw_events"

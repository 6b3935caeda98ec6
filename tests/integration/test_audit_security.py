"""ACL and Kafka credential changes on the real broker land in the audit log, without the
passwords."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from security_helpers import Tenant, forget_principals

from lintas.audit import acting_as, list_entries
from lintas.directory import Application, Directory
from lintas.kafka import KafkaConnection
from lintas.postgres import connect
from lintas.security import SecurityContext, deprovision, provision, sync_security
from lintas.settings import SecuritySettings, Settings


@pytest.fixture
def tenant(kafka_conn: KafkaConnection) -> Iterator[Tenant]:
    t = Tenant()
    try:
        yield t
    finally:
        forget_principals(kafka_conn, t.names)


def _settings(dsn: str, data_dir: Path, tenant: Tenant) -> Settings:
    """Settings for a test's own database and principal names."""
    return Settings(
        data_dir=data_dir,
        pg_dsn=dsn,
        security=SecuritySettings(principal_prefix=tenant.prefix),
    )


def _entries(dsn: str) -> list[tuple[str, str, str, dict[str, object]]]:
    async def run() -> list[tuple[str, str, str, dict[str, object]]]:
        conn = await connect(dsn)
        try:
            found = await list_entries(conn, actions=("acl.", "kafka_credential."), limit=500)
        finally:
            await conn.close()
        return [(e.actor, e.action, e.target, e.details) for e in reversed(found)]

    return asyncio.run(run())


def test_provisioning_and_revoking_an_application_is_audited(
    kafka_conn: KafkaConnection, fresh_db: str, tmp_path: Path, tenant: Tenant
) -> None:
    settings = _settings(fresh_db, tmp_path, tenant)
    ctx = SecurityContext.from_settings(settings)

    async def seed() -> Application:
        async with await Directory.open(settings, pg_dsn=fresh_db, publish=False) as d:
            await d.add_opd({"code": tenant.dinkes, "name": f"Dinas Kesehatan {tenant.tag}"})
            app, _ = await d.add_application(
                {"id": f"simpus-{tenant.tag}", "name": "SIMPUS", "opd": tenant.dinkes,
                 "method": "sdk"},
                issue_key=False,
            )  # fmt: skip
            return app

    app = asyncio.run(seed())
    principal = f"User:{tenant.prefix}app-simpus-{tenant.tag}"
    with acting_as("portal:siti"):
        credential = provision(ctx, kafka_conn, app)
    deprovision(ctx, kafka_conn, app)
    entries = _entries(fresh_db)
    assert [(actor, action, target) for actor, action, target, _ in entries] == [
        ("portal:siti", "acl.added", principal),
        ("portal:siti", "kafka_credential.issued", principal),
        (entries[2][0], "acl.removed", principal),
        (entries[2][0], "kafka_credential.deleted", principal),
    ]
    assert entries[2][0].startswith("os:")
    added = entries[0][3]["rules"]
    assert isinstance(added, list)
    assert any("Write topic opd." in rule for rule in added)
    assert credential.password not in orjson.dumps(entries).decode()


def test_a_dry_run_records_nothing_and_a_sync_records_what_it_changed(
    kafka_conn: KafkaConnection, fresh_db: str, tmp_path: Path, tenant: Tenant
) -> None:
    settings = _settings(fresh_db, tmp_path, tenant)
    ctx = SecurityContext.from_settings(settings)

    async def data() -> object:
        async with await Directory.open(settings, pg_dsn=fresh_db, publish=False) as d:
            await d.add_opd({"code": tenant.dinkes, "name": f"Dinas Kesehatan {tenant.tag}"})
            await d.add_subscriber({"name": tenant.sub("a"), "opd": tenant.dinkes, "mode": "kafka"})
            return await d.export_data()

    directory = asyncio.run(data())
    plan = sync_security(ctx, kafka_conn, directory, dry_run=True)  # type: ignore[arg-type]
    assert plan.acls.add and _entries(fresh_db) == []
    sync_security(ctx, kafka_conn, directory)  # type: ignore[arg-type]
    entries = _entries(fresh_db)
    targets = {(action, target) for _, action, target, _ in entries}
    assert ("acl.added", f"User:{tenant.prefix}sub-{tenant.sub('a')}") in targets
    # Services get their passwords in files: recorded, the passwords are not.
    services = [d for _, action, _, d in entries if action == "kafka_credential.issued"]
    assert services and all(d["handed_over"] == "password file" for d in services)
    written = "".join(p.read_text() for p in (tmp_path / "secrets" / "kafka-users").iterdir())
    assert written and not any(
        line and line in orjson.dumps(entries).decode() for line in written.splitlines()
    )

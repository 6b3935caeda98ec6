"""Principals and ACLs on the real broker (SASL/SCRAM, StandardAuthorizer, no ACL = no access).

An application publishes to its own OPD's topics only; a subscriber reads its own delivery
topic only; a revoked or wrong password is refused at once; ``sync_security`` reconciles
the broker with the directory and is idempotent; the stream workers' principal creates its
internal topics and nothing else.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from security_helpers import (
    Tenant,
    consume_one,
    create_topics,
    delete_topics,
    forget_principals,
    login_error,
    produce,
)

from lintas.directory import Application, Directory, Subscriber
from lintas.kafka import KafkaConnection
from lintas.producers import EventProducer, NotAuthorized
from lintas.schemas import example_event, load_catalog, model_for
from lintas.security import (
    AuthenticationRefused,
    IssuedCredential,
    SecurityContext,
    deprovision,
    provision,
    sync_entry,
    sync_security,
)
from lintas.security._admin import SecurityAdmin
from lintas.security.reconcile import service_password_file
from lintas.settings import SecuritySettings, Settings, StreamsSettings


@dataclass
class World:
    """One test's tenant on the shared broker, with its directory and topics."""

    tenant: Tenant
    settings: Settings
    ctx: SecurityContext
    admin_conn: KafkaConnection
    pg_dsn: str
    topics: dict[str, str]

    def directory(self, work: Any) -> Any:
        async def run() -> Any:
            async with await Directory.open(
                self.settings, pg_dsn=self.pg_dsn, publish=False
            ) as directory:
                return await work(directory)

        return asyncio.run(run())


@pytest.fixture
def world(kafka_conn: KafkaConnection, fresh_db: str, tmp_path: Path) -> Iterator[World]:
    t = Tenant()
    settings = Settings(
        data_dir=tmp_path,
        pg_dsn=fresh_db,
        security=SecuritySettings(principal_prefix=t.prefix),
        streams=StreamsSettings(app_id=f"t{t.tag}-streams"),
    )
    topics = {
        "dinkes": f"opd.{t.dinkes}.kunjungan_dicatat.v1",
        "dukcapil": f"opd.{t.dukcapil}.kematian_dicatat.v1",
        "canonical": f"lintas.canonical.{t.dukcapil}.kematian_dicatat.v1",
        "a": f"lintas.deliver.{t.sub('a')}",
        "b": f"lintas.deliver.{t.sub('b')}",
    }
    w = World(
        tenant=t,
        settings=settings,
        ctx=SecurityContext.from_settings(settings),
        admin_conn=kafka_conn,
        pg_dsn=fresh_db,
        topics=topics,
    )

    async def seed(d: Directory) -> None:
        for code, name in ((t.dinkes, "Dinas Kesehatan"), (t.dukcapil, "Disdukcapil")):
            await d.add_opd({"code": code, "name": f"{name} {t.tag}"})
        for app_id, opd in ((f"simpus-{t.tag}", t.dinkes), (f"siak-{t.tag}", t.dukcapil)):
            data = {"id": app_id, "name": app_id, "opd": opd, "method": "sdk"}
            await d.add_application(data, issue_key=False)
        for letter in "ab":
            await d.add_subscriber({"name": t.sub(letter), "opd": t.dinkes, "mode": "kafka"})

    w.directory(seed)
    create_topics(kafka_conn, topics.values())
    try:
        yield w
    finally:
        forget_principals(kafka_conn, t.names)
        changelog = f"t{t.tag}-streams-dedup-changelog"
        delete_topics(kafka_conn, [*topics.values(), changelog, f"{topics['a']}.dlq"])


def _app(w: World, name: str) -> Application:
    return w.directory(lambda d: d.get_application(f"{name}-{w.tenant.tag}"))  # type: ignore[no-any-return]


def _sub(w: World, letter: str) -> Subscriber:
    return w.directory(lambda d: d.get_subscriber(w.tenant.sub(letter)))  # type: ignore[no-any-return]


def _conn(w: World, cred: IssuedCredential) -> KafkaConnection:
    return cred.connection(w.admin_conn)


def test_a_dinkes_app_cannot_produce_to_dukcapil_topics(world: World) -> None:
    cred = provision(world.ctx, world.admin_conn, _app(world, "simpus"))
    assert cred.principal == f"User:{world.tenant.prefix}app-simpus-{world.tenant.tag}"
    conn = _conn(world, cred)
    assert produce(conn, world.topics["dinkes"]) is None, "its own OPD's topic"
    assert produce(conn, world.topics["dukcapil"]) == "TOPIC_AUTHORIZATION_FAILED"
    # Publishing is all it may do: not even its own topic can be read back.
    group = f"t{world.tenant.tag}-peek"
    assert consume_one(conn, world.topics["dinkes"], group) in (
        "TOPIC_AUTHORIZATION_FAILED",
        "GROUP_AUTHORIZATION_FAILED",
    )


async def test_the_sdk_names_topic_and_principal_when_refused(
    world: World, registry_url: str, tmp_path: Path
) -> None:
    from prometheus_client import CollectorRegistry

    from lintas.settings import ProducerSettings

    app = await asyncio.to_thread(_app, world, "simpus")
    cred = await asyncio.to_thread(provision, world.ctx, world.admin_conn, app)
    catalog = load_catalog()
    kematian = catalog.get("dukcapil.kematian_dicatat.v1")
    kunjungan = next(et for et in catalog if et.opd == "dinkes")
    routes = {kematian.id: world.topics["dukcapil"], kunjungan.id: world.topics["dinkes"]}
    settings = Settings(
        data_dir=tmp_path,
        producer=ProducerSettings(spool_dir=tmp_path / "spool", start_timeout_s=10),
    )
    producer = EventProducer(
        app=f"simpus-{world.tenant.tag}",
        opd="dinkes",
        settings=settings,
        connection=_conn(world, cred),
        registry=registry_url,
        metrics_registry=CollectorRegistry(),
        topic_of=lambda et: routes[et.id],
    )
    async with producer:
        own = model_for(kunjungan).model_validate(example_event(kunjungan))
        assert (await asyncio.wait_for(producer.send(own), 60)).sent
        other = model_for(kematian).model_validate(example_event(kematian))
        with pytest.raises(NotAuthorized) as refused:
            await asyncio.wait_for(producer.send(other), 60)
        assert producer.spooled == 0, "a refusal is not kept for a retry"
    assert refused.value.topic == world.topics["dukcapil"]
    assert refused.value.principal == cred.principal


def test_a_subscriber_reads_only_its_own_delivery_topic(world: World) -> None:
    for name in ("a", "b", "canonical"):
        assert produce(world.admin_conn, world.topics[name], name.encode()) is None
    cred = provision(world.ctx, world.admin_conn, _sub(world, "a"))
    conn = _conn(world, cred)
    own_group = f"lintas-sub-{world.tenant.sub('a')}"
    assert consume_one(conn, world.topics["a"], own_group) == b"a"
    assert consume_one(conn, world.topics["b"], own_group) == "TOPIC_AUTHORIZATION_FAILED"
    assert consume_one(conn, world.topics["canonical"], own_group) == "TOPIC_AUTHORIZATION_FAILED"
    assert consume_one(conn, world.topics["dukcapil"], own_group) == "TOPIC_AUTHORIZATION_FAILED"
    # Nor may it join (and so disturb) the other subscriber's consumer group.
    other_group = f"lintas-sub-{world.tenant.sub('b')}"
    assert consume_one(conn, world.topics["a"], other_group) == "GROUP_AUTHORIZATION_FAILED"
    assert produce(conn, world.topics["a"]) == "TOPIC_AUTHORIZATION_FAILED", "read-only"


def test_revoked_and_replaced_credentials_are_refused(world: World) -> None:
    app = _app(world, "siak")
    first = provision(world.ctx, world.admin_conn, app)
    assert login_error(_conn(world, first)) is None
    # A new password (a leaked one replaced) ends the old one at once.
    second = provision(world.ctx, world.admin_conn, app)
    assert login_error(_conn(world, first)) == "_AUTHENTICATION"
    assert produce(_conn(world, second), world.topics["dukcapil"]) is None
    # Revoking (`lintas apps revoke`) deletes the credential; its ACLs wait for a new one.
    assert deprovision(world.ctx, world.admin_conn, app, keep_acls=True) == second.principal
    assert login_error(_conn(world, second)) == "_AUTHENTICATION"
    with SecurityAdmin(world.admin_conn) as admin:
        assert admin.acls(lambda u: u == second.user), "ACLs kept for a new password"
        # Retiring removes the ACLs too.
        deprovision(world.ctx, world.admin_conn, app)
        assert admin.acls(lambda u: u == second.user) == set()
        assert second.user not in admin.scram_users()


def test_wrong_passwords_are_refused_not_retried(world: World) -> None:
    cred = provision(world.ctx, world.admin_conn, _app(world, "simpus"))
    wrong = IssuedCredential(user=cred.user, password=cred.password + "x")
    assert login_error(_conn(world, wrong)) == "_AUTHENTICATION"
    stranger = IssuedCredential(user=f"{world.tenant.prefix}app-nobody", password="x" * 20)
    assert login_error(_conn(world, stranger)) == "_AUTHENTICATION"
    # The platform's own admin calls fail the same way, naming the principal.
    with pytest.raises(AuthenticationRefused) as refused, SecurityAdmin(_conn(world, wrong)) as a:
        a.scram_users()
    assert refused.value.principal == cred.principal
    assert cred.principal in refused.value.message


def test_sync_reconciles_with_the_directory_and_is_idempotent(world: World) -> None:
    t = world.tenant
    data = world.directory(lambda d: d.export_data())
    planned = sync_security(world.ctx, world.admin_conn, data, dry_run=True)
    added = {r.user for r in planned.acls.add}
    assert {t.names.app(f"simpus-{t.tag}"), t.names.subscriber(t.sub("a"))} <= added
    assert t.names.service("worker") in added
    with SecurityAdmin(world.admin_conn) as admin:
        assert admin.acls(t.names.is_managed) == set(), "a dry run changes nothing"

    applied = sync_security(world.ctx, world.admin_conn, data)
    assert applied.acls.add == planned.acls.add
    assert set(applied.missing_credentials) == {
        t.names.app(f"simpus-{t.tag}"),
        t.names.app(f"siak-{t.tag}"),
        t.names.subscriber(t.sub("a")),
        t.names.subscriber(t.sub("b")),
    }, "application and subscriber passwords are issued one by one, shown once"
    password_file = service_password_file(world.ctx.password_dir, t.names.service("worker"))
    assert os.stat(password_file).st_mode & 0o077 == 0
    again = sync_security(world.ctx, world.admin_conn, data, dry_run=True)
    assert again.empty, again.lines()

    # Retire an app and disable a subscriber: their rights go, nobody else's.
    sub_user = t.names.subscriber(t.sub("b"))
    provision(world.ctx, world.admin_conn, _sub(world, "b"))

    async def change(d: Directory) -> Subscriber:
        await d.retire_application(f"siak-{t.tag}")
        return await d.set_subscriber_status(t.sub("b"), "disabled")

    disabled = world.directory(change)
    assert sync_entry(world.ctx, world.admin_conn, disabled), "its Read rules are removed"
    after = sync_security(world.ctx, world.admin_conn, world.directory(lambda d: d.export_data()))
    siak = t.names.app(f"siak-{t.tag}")
    assert {r.user for r in after.acls.remove} == {siak}
    with SecurityAdmin(world.admin_conn) as admin:
        users = {r.user for r in admin.acls(t.names.is_managed)}
        assert siak not in users and sub_user not in users
        assert t.names.app(f"simpus-{t.tag}") in users
        assert sub_user in admin.scram_users(), "a disabled subscriber keeps its credential"


def test_the_workers_principal_creates_only_its_internal_topics(world: World) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    data = world.directory(lambda d: d.export_data())
    sync_security(world.ctx, world.admin_conn, data)
    user = world.tenant.names.service("worker")
    password = service_password_file(world.ctx.password_dir, user).read_text().strip()
    conn = IssuedCredential(user=user, password=password).connection(world.admin_conn)
    admin = AdminClient(conn.confluent_config())
    changelog = f"t{world.tenant.tag}-streams-dedup-changelog"
    foreign = f"t{world.tenant.tag}-other-changelog"
    futures = admin.create_topics([NewTopic(changelog, 1, 1), NewTopic(foreign, 1, 1)])
    futures[changelog].result(30)
    with pytest.raises(Exception, match="TOPIC_AUTHORIZATION_FAILED"):
        futures[foreign].result(30)
    assert produce(conn, changelog) is None
    assert consume_one(conn, changelog, f"t{world.tenant.tag}-streams") == b"x"
    # It reads the OPD topics but never writes them (that is the applications' right).
    assert produce(conn, world.topics["dinkes"]) == "TOPIC_AUTHORIZATION_FAILED"

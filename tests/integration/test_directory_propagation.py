"""Live propagation of the directory through its compacted topic, on the real broker and
database: what a running gateway, deliverer or stream worker sees, and how fast."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from lintas.deploy.local._process import free_port
from lintas.directory import (
    Directory,
    DirectorySnapshot,
    DirectoryUnavailable,
    DirectoryView,
    InvalidApiKey,
    SubscriberStatus,
)
from lintas.kafka import KafkaConnection, create_consumer, create_producer
from lintas.schemas import decode, encode, example_event, load_catalog
from lintas.settings import Settings

pytestmark = pytest.mark.asyncio(loop_scope="session")

KEMATIAN = "dukcapil.kematian_dicatat.v1"
# Generous bound for "within seconds": a change normally shows in well under one second.
SEEN_WITHIN = 15.0

ViewFactory = Callable[..., Awaitable[DirectoryView]]
DirectoryFactory = Callable[..., Awaitable[Directory]]


@pytest_asyncio.fixture(loop_scope="session")
async def directory_topic(topic_factory: Callable[..., Any]) -> str:
    name: str = await topic_factory(
        "test.directory.", partitions=1, **{"cleanup.policy": "compact"}
    )
    return name


@pytest_asyncio.fixture(loop_scope="session")
async def open_directory(
    fresh_db: str, tmp_path: Path, kafka_conn: KafkaConnection, directory_topic: str
) -> AsyncIterator[DirectoryFactory]:
    """``await open_directory(kafka=..., publish=...)``: a Directory on this test's database
    publishing to this test's topic (several may be open, like several processes)."""
    opened: list[Directory] = []
    settings = Settings(data_dir=tmp_path, pg_dsn=fresh_db)

    async def make(*, kafka: KafkaConnection | None = None, publish: bool = True) -> Directory:
        directory = await Directory.open(
            settings,
            pg_dsn=fresh_db,
            kafka=kafka or kafka_conn,
            publish=publish,
            topic=directory_topic,
        )
        opened.append(directory)
        return directory

    try:
        yield make
    finally:
        for directory in opened:
            await directory.close()


@pytest_asyncio.fixture(loop_scope="session")
async def directory(open_directory: DirectoryFactory) -> Directory:
    return await open_directory()


@pytest_asyncio.fixture(loop_scope="session")
async def view_factory(
    kafka_conn: KafkaConnection, directory_topic: str
) -> AsyncIterator[ViewFactory]:
    """``await view_factory()``: a started view of this test's topic, stopped afterwards."""
    views: list[DirectoryView] = []

    async def make(**options: Any) -> DirectoryView:
        view = DirectoryView(kafka_conn, topic=directory_topic, start_timeout=30, **options)
        await view.start()
        views.append(view)
        return view

    try:
        yield make
    finally:
        for view in views:
            await view.stop()


async def _seed(d: Directory) -> None:
    for code, name in [
        ("dukcapil", "Dinas Kependudukan dan Pencatatan Sipil"),
        ("dinsos", "Dinas Sosial"),
        ("bapenda", "Badan Pendapatan Daerah"),
    ]:
        await d.add_opd({"code": code, "name": name})
    await d.add_subscriber({"name": "sikesra", "opd": "dinsos", "mode": "kafka"})
    await d.add_subscriber(
        {"name": "sipd", "opd": "bapenda", "mode": "webhook", "webhook_url": "https://sipd.x/h"}
    )


def _app(**over: Any) -> dict[str, Any]:
    return {"id": "siak", "name": "SIAK Terpusat", "opd": "dukcapil", "method": "sdk",
            "pse_number": "000123.01/DJAI.PSE/07/2022", "produces": [KEMATIAN], **over}  # fmt: skip


def _subscription(**over: Any) -> dict[str, Any]:
    return {
        "name": "kematian-dinsos",
        "subscriber": "sikesra",
        "event_types": [KEMATIAN],
        "fields": ["nik", "tanggal_kematian"],
        "filter": {"kode_wilayah_prefix": "32.73"},
        "purpose": "Penghentian bansos bagi penerima yang meninggal (UU 27/2022 Pasal 20).",
        **over,
    }


def _kematian_from_the_wire() -> dict[str, Any]:
    """A death record as a stream worker holds it: encoded and decoded in the wire format."""
    event_type = load_catalog().get(KEMATIAN)
    value = encode(1, event_type.parsed_schema, example_event(event_type))
    return decode(value, event_type.parsed_schema)


async def _raw_records(kafka: KafkaConnection, topic: str) -> list[Any]:
    consumer = create_consumer(kafka, topic, group_id=None)
    await consumer.start()
    try:
        tps = list(consumer.assignment())
        end = await consumer.end_offsets(tps)
        records: list[Any] = []
        async with asyncio.timeout(SEEN_WITHIN):
            while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def test_a_view_started_after_the_changes_sees_the_whole_directory(
    directory: Directory, view_factory: ViewFactory
) -> None:
    await _seed(directory)
    app, key = await directory.add_application(_app())
    await directory.add_subscription(_subscription())
    await directory.update_subscription("kematian-dinsos", fields=["nik"])
    assert key is not None and await directory.pending_changes() == 0

    view = await view_factory()
    # start() returned after catching up: no waiting needed to see everything.
    assert view.snapshot.to_data() == await directory.export_data()
    assert set(view.snapshot.api_keys) == {k.key_id for k in await directory.list_keys(app.id)}
    assert len(view.snapshot.webhook_secret_ids["sipd"]) == 1
    assert view.snapshot.webhook_secret_ids["sikesra"] == ()
    assert view.verify_api_key(key.token) == app
    assert view.skipped == 0


async def test_a_running_view_routes_the_next_event_by_the_new_rule(
    directory: Directory, view_factory: ViewFactory
) -> None:
    await _seed(directory)
    view = await view_factory()
    seen: list[tuple[str, Any]] = []
    view.on_change(lambda key, value: seen.append((key, value)))
    record = _kematian_from_the_wire()
    assert record["kode_wilayah"].startswith("32.73.01.")
    assert view.route(KEMATIAN, record) == []

    def routed() -> dict[str, dict[str, Any]]:
        return {r.subscription.name: r.payload for r in view.route(KEMATIAN, record)}

    # A new subscription.
    added = await directory.add_subscription(_subscription())
    await view.wait_until(lambda s: "kematian-dinsos" in s.subscriptions, SEEN_WITHIN)
    assert routed() == {
        "kematian-dinsos": {"nik": record["nik"], "tanggal_kematian": record["tanggal_kematian"]}
    }
    assert ("subscription:kematian-dinsos", added) in seen

    # A changed filter: the next event (a Bandung death) no longer goes to Semarang's rule.
    await directory.update_subscription("kematian-dinsos", filter={"kode_wilayah_prefix": "33.74"})
    await view.wait_until(
        lambda s: s.subscriptions["kematian-dinsos"].filter.kode_wilayah_prefix == "33.74",
        SEEN_WITHIN,
    )
    assert routed() == {}

    # Changed filter and fields: delivered again, with other fields (data minimisation).
    await directory.update_subscription(
        "kematian-dinsos",
        filter={"kode_wilayah_prefix": "32.73.01", "equals": {"sebab_kematian": "SAKIT_BIASA"}},
        fields=["nik", "nama", "kode_wilayah"],
    )
    await view.wait_until(
        lambda s: "nama" in s.subscriptions["kematian-dinsos"].fields, SEEN_WITHIN
    )
    assert routed() == {"kematian-dinsos": {k: record[k] for k in ("nik", "nama", "kode_wilayah")}}
    assert routed()["kematian-dinsos"].keys().isdisjoint({"tanggal_lahir", "nomor_kk"})

    # A second subscriber's glob, then that subscriber paused: it stops receiving.
    await directory.add_subscription(
        _subscription(
            name="kematian-bapenda",
            subscriber="sipd",
            event_types=["*.kematian_dicatat.v1"],
            fields=["*"],
            filter={},
        )
    )
    await view.wait_until(lambda s: "kematian-bapenda" in s.subscriptions, SEEN_WITHIN)
    assert routed()["kematian-bapenda"] == record
    assert sorted(routed()) == ["kematian-bapenda", "kematian-dinsos"]
    await directory.set_subscriber_status("sipd", SubscriberStatus.PAUSED)
    await view.wait_until(
        lambda s: s.subscribers["sipd"].status is SubscriberStatus.PAUSED, SEEN_WITHIN
    )
    assert sorted(routed()) == ["kematian-dinsos"]

    # A removed subscription: the tombstone reaches the view and its listeners.
    await directory.remove_subscription("kematian-dinsos")
    await view.wait_until(lambda s: "kematian-dinsos" not in s.subscriptions, SEEN_WITHIN)
    assert routed() == {}
    assert seen[-1] == ("subscription:kematian-dinsos", None)


async def _same_refusal(
    directory: Directory, snapshot: DirectorySnapshot, token: str
) -> str | None:
    """The view's answer for a token, checked against the database's own answer."""
    try:
        from_db = (await directory.verify_api_key(token)).id
    except InvalidApiKey as exc:
        from_db = exc.reason
    try:
        from_view = snapshot.verify_api_key(token).id
    except InvalidApiKey as exc:
        from_view = exc.reason
    assert from_view == from_db
    return from_view


async def test_keys_issued_rotated_and_revoked_reach_the_view(
    directory: Directory, view_factory: ViewFactory
) -> None:
    await _seed(directory)
    view = await view_factory()
    app, first = await directory.add_application(_app())
    assert first is not None
    snap = await view.wait_until(lambda s: first.key_id in s.api_keys, SEEN_WITHIN)
    assert await _same_refusal(directory, snap, first.token) == app.id
    assert view.verify_api_key(first.token) == app

    # Rotation with an overlap: both keys work until the old one expires.
    second = await directory.issue_key(app.id, overlap=dt.timedelta(hours=1))
    snap = await view.wait_until(
        lambda s: second.key_id in s.api_keys and s.api_keys[first.key_id].expires_at is not None,
        SEEN_WITHIN,
    )
    assert await _same_refusal(directory, snap, first.token) == app.id
    assert await _same_refusal(directory, snap, second.token) == app.id

    # Rotation without overlap: the old key stops at once.
    third = await directory.issue_key(app.id, overlap=dt.timedelta(0))
    snap = await view.wait_until(lambda s: third.key_id in s.api_keys, SEEN_WITHIN)
    assert await _same_refusal(directory, snap, second.token) == "key expired (rotated)"
    assert await _same_refusal(directory, snap, third.token) == app.id

    await directory.revoke_keys(app.id, third.key_id, force=True)
    snap = await view.wait_until(
        lambda s: s.api_keys[third.key_id].revoked_at is not None, SEEN_WITHIN
    )
    assert await _same_refusal(directory, snap, third.token) == "key revoked"
    with pytest.raises(InvalidApiKey, match="revoked"):
        view.verify_api_key(third.token)
    assert await _same_refusal(directory, snap, third.token[:-4] + "AAAA") == "unknown key"


async def test_changes_made_while_kafka_is_down_wait_in_the_outbox_and_arrive_later(
    open_directory: DirectoryFactory, kafka_conn: KafkaConnection, view_factory: ViewFactory
) -> None:
    view = await view_factory()
    # A Directory whose Kafka is unreachable: nothing listens on this port.
    down = KafkaConnection(
        bootstrap=f"127.0.0.1:{free_port()}",
        username=kafka_conn.username,
        password=kafka_conn.password,
    )
    offline = await open_directory(kafka=down)
    await _seed(offline)
    await offline.add_subscription(_subscription())
    assert offline.last_publish_error is not None
    pending = await offline.pending_changes()
    assert pending == 6  # 3 OPDs, 2 subscribers, 1 subscription: all committed
    assert [s.name for s in await offline.list_subscriptions()] == ["kematian-dinsos"]
    assert view.snapshot.subscriptions == {}

    # Kafka is back (here: another process that reaches it, as `lintas directory publish`).
    online = await open_directory()
    assert await online.publish_pending() == pending
    assert await offline.pending_changes() == 0
    snap = await view.wait_until(lambda s: "kematian-dinsos" in s.subscriptions, SEEN_WITHIN)
    assert snap.to_data() == await online.export_data()


async def test_a_tombstone_removes_the_entity_from_a_freshly_started_view(
    directory: Directory,
    view_factory: ViewFactory,
    kafka_conn: KafkaConnection,
    directory_topic: str,
) -> None:
    await _seed(directory)
    await directory.add_subscription(_subscription())
    await directory.add_subscription(_subscription(name="kematian-lain", fields=["nik"]))
    await directory.remove_subscription("kematian-dinsos")
    assert await directory.pending_changes() == 0

    records = await _raw_records(kafka_conn, directory_topic)
    by_key = [(r.key.decode(), r.value) for r in records if r.key.startswith(b"subscription:")]
    # Keyed by entity, so compaction keeps the latest of each; the tombstone is last.
    assert [k for k, _ in by_key] == [
        "subscription:kematian-dinsos",
        "subscription:kematian-lain",
        "subscription:kematian-dinsos",
    ]
    assert by_key[-1][1] is None

    view = await view_factory()
    assert sorted(view.snapshot.subscriptions) == ["kematian-lain"]
    assert sorted(view.snapshot.subscribers) == ["sikesra", "sipd"]


async def test_malformed_records_are_skipped_and_the_view_keeps_following(
    directory: Directory,
    view_factory: ViewFactory,
    kafka_conn: KafkaConnection,
    directory_topic: str,
) -> None:
    await _seed(directory)
    producer = create_producer(kafka_conn)
    await producer.start()
    try:
        for key, value in [
            (b"opd:dinkes", b"{not json"),
            (b"principal:siak", b'{"kind": "principal", "data": {}}'),
            (b"opd:dinsos", b'{"kind": "opd", "data": {"code": "dinsos"}}'),
        ]:
            await producer.send_and_wait(directory_topic, key=key, value=value)
        starting = await view_factory()
        assert starting.skipped == 3
        assert sorted(starting.snapshot.opds) == ["bapenda", "dinsos", "dukcapil"]

        # (A record without a key cannot even reach a compacted topic: the broker refuses it.)
        await producer.send_and_wait(directory_topic, key=b"app:siak", value=b'{"kind": "app"}')
        await directory.add_subscription(_subscription())
        await starting.wait_until(lambda s: "kematian-dinsos" in s.subscriptions, SEEN_WITHIN)
        assert starting.skipped == 4
    finally:
        await producer.stop()


async def test_two_publishers_at_once_keep_every_change_once_and_in_order(
    open_directory: DirectoryFactory,
    kafka_conn: KafkaConnection,
    directory_topic: str,
    view_factory: ViewFactory,
) -> None:
    writer = await open_directory(publish=False)
    await _seed(writer)
    await writer.add_subscription(_subscription())
    fields = ["nik", "nama", "tanggal_kematian", "kode_wilayah", "nomor_kk"]
    for n in range(1, 40):
        await writer.update_subscription("kematian-dinsos", fields=fields[: 1 + n % 5])
    final = await writer.update_subscription("kematian-dinsos", fields=["nama"])
    pending = await writer.pending_changes()
    assert pending == 46

    first, second = await open_directory(), await open_directory()
    counts = await asyncio.gather(first.publish_pending(), second.publish_pending())
    # The advisory lock lets one publish at a time; nothing is left, nothing doubled.
    assert sum(counts) == pending and await writer.pending_changes() == 0

    records = await _raw_records(kafka_conn, directory_topic)
    seqs = [int(dict(r.headers)["lintas_seq"]) for r in records]
    assert seqs == sorted(set(seqs)) and len(seqs) == pending
    view = await view_factory()
    assert view.snapshot.subscriptions["kematian-dinsos"] == final


async def test_start_fails_clearly_when_the_topic_is_missing_or_kafka_is_down(
    kafka_conn: KafkaConnection,
) -> None:
    missing = DirectoryView(kafka_conn, topic="test.directory.never-created", start_timeout=10)
    with pytest.raises(DirectoryUnavailable, match="does not exist") as exc:
        await missing.start()
    assert "lintas topics sync" in str(exc.value)
    with pytest.raises(RuntimeError):
        _ = missing.snapshot

    down = KafkaConnection(
        bootstrap=f"127.0.0.1:{free_port()}", username="lintas", password="unused"
    )
    unreachable = DirectoryView(down, start_timeout=5)
    with pytest.raises(DirectoryUnavailable) as exc:
        await unreachable.start()
    assert exc.value.retriable


async def test_a_change_committed_while_another_publisher_holds_the_lock_is_published(
    directory: Directory, fresh_db: str
) -> None:
    from lintas.directory._outbox import _PUBLISH_LOCK
    from lintas.postgres import connect

    await directory.add_opd({"code": "dukcapil", "name": "Disdukcapil"})
    assert await directory.pending_changes() == 0
    other = await connect(fresh_db)
    try:
        tx = other.transaction()
        await tx.start()
        await other.execute("SELECT pg_advisory_xact_lock($1)", _PUBLISH_LOCK)
        change = asyncio.create_task(directory.add_opd({"code": "dinsos", "name": "Dinsos"}))
        await asyncio.sleep(0.5)  # the change commits, its publisher waits for the lock
        assert not change.done()
        await tx.rollback()  # the other publisher finishes without having seen the change
        await asyncio.wait_for(change, SEEN_WITHIN)
    finally:
        await other.close()
    assert directory.last_publish_error is None
    assert await directory.pending_changes() == 0

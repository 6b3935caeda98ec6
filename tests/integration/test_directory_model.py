"""The directory's model on the real database: rules, keys, secrets, activity, the outbox."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from lintas.directory import (
    AlreadyExists,
    AppStatus,
    ConfirmationRequired,
    Directory,
    InvalidApiKey,
    InvalidEntry,
    NotFound,
)
from lintas.postgres import connect
from lintas.settings import DirectorySettings, Settings

pytestmark = pytest.mark.asyncio(loop_scope="session")

KEMATIAN = "dukcapil.kematian_dicatat.v1"


@pytest_asyncio.fixture(loop_scope="session")
async def directory(fresh_db: str, tmp_path: Path) -> AsyncIterator[Directory]:
    settings = Settings(data_dir=tmp_path, pg_dsn=fresh_db)
    async with await Directory.open(settings, pg_dsn=fresh_db, publish=False) as d:
        yield d


async def _seed(d: Directory) -> None:
    await d.add_opd({"code": "dukcapil", "name": "Dinas Kependudukan dan Pencatatan Sipil"})
    await d.add_opd({"code": "dinsos", "name": "Dinas Sosial"})


def _app(**over: Any) -> dict[str, Any]:
    return {
        "id": "siak",
        "name": "SIAK Terpusat",
        "opd": "dukcapil",
        "method": "sdk",
        "pse_number": "000123.01/DJAI.PSE/07/2022",
        "produces": [KEMATIAN],
        **over,
    }


def _problems(exc: InvalidEntry) -> dict[str, str]:
    return {p.field: p.rule for p in exc.problems}


async def test_opd_defaults_to_the_platform_pemda_and_refuses_duplicates(
    directory: Directory,
) -> None:
    opd = await directory.add_opd({"code": "dukcapil", "name": "Disdukcapil"})
    defaults = DirectorySettings()
    assert (opd.pemda_name, opd.pemda_code) == (defaults.pemda_name, defaults.pemda_code)
    with pytest.raises(AlreadyExists) as exc:
        await directory.add_opd({"code": "dukcapil", "name": "Another"})
    assert exc.value.field == "code"
    with pytest.raises(AlreadyExists) as exc:
        await directory.add_opd({"code": "capil", "name": "DISDUKCAPIL"})
    assert exc.value.field == "name"
    with pytest.raises(InvalidEntry) as bad:
        await directory.add_opd({"code": "Bad Code", "name": "X", "pemda_code": "99.99"})
    assert set(_problems(bad.value)) == {"code", "pemda_code"}
    assert [o.code for o in await directory.list_opds()] == ["dukcapil"]


async def test_application_rules_name_field_and_rule(directory: Directory) -> None:
    await _seed(directory)
    with pytest.raises(InvalidEntry) as bad:
        await directory.add_application(
            _app(opd="dinkes", pse_number="PSE-123", status="integrated")
        )
    problems = _problems(bad.value)
    assert "DJAI.PSE" in problems["pse_number"]
    assert "computed" in problems["status"]
    with pytest.raises(InvalidEntry) as bad:
        await directory.add_application(_app(opd="dinkes"))
    assert "not a registered OPD" in _problems(bad.value)["opd"]
    with pytest.raises(InvalidEntry) as bad:
        await directory.add_application(_app(opd="dinsos", produces=[KEMATIAN, "dukcapil.nope.v1"]))
    rules = [p.rule for p in bad.value.problems if p.field == "produces"]
    assert any("only dinsos.*" in r for r in rules)
    assert any("not in the catalog" in r for r in rules)
    assert await directory.list_applications() == []  # nothing half-written


async def test_keys_are_shown_once_stored_hashed_rotated_with_overlap_and_revoked(
    directory: Directory, fresh_db: str
) -> None:
    await _seed(directory)
    app, first = await directory.add_application(_app())
    assert first is not None and first.token.startswith("lk_")
    assert (await directory.verify_api_key(first.token)).id == app.id

    conn = await connect(fresh_db)
    try:
        stored = await conn.fetch("SELECT * FROM lintas.dir_api_keys")
        dumped = str([dict(r) for r in stored])
    finally:
        await conn.close()
    assert first.token[16:] not in dumped  # the secret is nowhere in the table

    second = await directory.issue_key(app.id, overlap=dt.timedelta(hours=1))
    keys = {k.key_id: k for k in await directory.list_keys(app.id)}
    assert keys[first.key_id].expires_at is not None
    assert keys[second.key_id].expires_at is None
    assert (await directory.verify_api_key(first.token)).id == app.id  # still in overlap

    with pytest.raises(InvalidApiKey, match="unknown key"):
        await directory.verify_api_key(first.token[:-4] + "AAAA")
    with pytest.raises(InvalidApiKey, match="malformed"):
        await directory.verify_api_key("Bearer nonsense")

    assert await directory.revoke_keys(app.id, first.key_id) == [first.key_id]
    with pytest.raises(InvalidApiKey, match="revoked"):
        await directory.verify_api_key(first.token)
    # The last key was just used: revoking it needs force.
    with pytest.raises(ConfirmationRequired):
        await directory.revoke_keys(app.id)
    assert await directory.revoke_keys(app.id, force=True) == [second.key_id]
    with pytest.raises(InvalidApiKey):
        await directory.verify_api_key(second.token)


async def test_retired_application_has_no_working_key(directory: Directory) -> None:
    await _seed(directory)
    app, key = await directory.add_application(_app())
    assert key is not None
    retired = await directory.retire_application(app.id)
    assert retired.status is AppStatus.RETIRED
    with pytest.raises(InvalidApiKey, match="revoked"):
        await directory.verify_api_key(key.token)
    with pytest.raises(InvalidEntry):
        await directory.issue_key(app.id)


async def test_subscriber_and_subscription_rules(directory: Directory) -> None:
    await _seed(directory)
    with pytest.raises(InvalidEntry) as bad:
        await directory.add_subscriber(
            {"name": "sikesra", "opd": "dinsos", "mode": "webhook", "webhook_url": "ftp://x/y"}
        )
    assert "http(s)" in _problems(bad.value)["webhook_url"]
    with pytest.raises(InvalidEntry) as bad:
        await directory.add_subscriber({"name": "sikesra", "opd": "dinsos", "mode": "webhook"})
    assert "required" in _problems(bad.value)["webhook_url"]

    sub, secret = await directory.add_subscriber(
        {"name": "sikesra", "opd": "dinsos", "mode": "webhook", "webhook_url": "https://x/h"}
    )
    assert secret is not None and secret.startswith("whsec_")
    assert await directory.webhook_secrets(sub.name) == [secret]
    newer = await directory.rotate_webhook_secret(sub.name)
    assert await directory.webhook_secrets(sub.name) == [newer, secret]

    good = {
        "name": "kematian-untuk-dinsos",
        "subscriber": "sikesra",
        "event_types": [KEMATIAN],
        "fields": ["nik", "tanggal_kematian"],
        "filter": {"kode_wilayah_prefix": "32.73"},
        "purpose": "Penghentian bansos bagi penerima yang meninggal (UU 27/2022 Pasal 20).",
    }
    with pytest.raises(InvalidEntry) as bad:
        await directory.add_subscription(
            {
                **good,
                "event_types": ["dukcapil.tidak_ada.v1"],
                "fields": ["nik"],
            }
        )
    assert "matches no event type" in _problems(bad.value)["event_types"]
    with pytest.raises(InvalidEntry) as bad:
        await directory.add_subscription(
            {**good, "fields": ["nik", "gaji"], "filter": {"equals": {"agama": "x"}}}
        )
    problems = _problems(bad.value)
    assert "is not a field of dukcapil.kematian_dicatat.v1" in problems["fields"]
    assert "filter.equals.agama" in problems
    with pytest.raises(InvalidEntry) as bad:
        await directory.add_subscription({**good, "subscriber": "nobody"})
    assert "subscriber" in _problems(bad.value)

    added = await directory.add_subscription(good)
    assert added.fields == ("nik", "tanggal_kematian")
    changed = await directory.update_subscription(added.name, fields=["nik"])
    assert (await directory.get_subscription(added.name)).fields == changed.fields == ("nik",)
    await directory.remove_subscription(added.name)
    with pytest.raises(NotFound):
        await directory.get_subscription(added.name)


async def test_integrated_is_computed_from_activity(directory: Directory) -> None:
    await _seed(directory)
    app, _ = await directory.add_application(_app())
    other, _ = await directory.add_application(_app(id="simpus", name="SIMPUS"))
    now = dt.datetime.now(dt.UTC)
    await directory.record_activity(app.id, produced=3, at=now - dt.timedelta(days=2))
    await directory.record_activity(other.id, produced=5, at=now - dt.timedelta(days=45))
    report = {r.app_id: r for r in await directory.integration_report(now=now)}
    assert report[app.id].integrated and report[app.id].status is AppStatus.INTEGRATED
    assert report[app.id].produced_in_window == 3
    assert not report[other.id].integrated
    assert report[other.id].status is AppStatus.PLANNED
    await directory.retire_application(app.id)
    report = {r.app_id: r for r in await directory.integration_report(now=now)}
    assert report[app.id].status is AppStatus.RETIRED and not report[app.id].integrated


async def test_every_change_lands_in_the_outbox_without_secrets(
    directory: Directory, fresh_db: str
) -> None:
    await _seed(directory)
    _, key = await directory.add_application(_app())
    _, secret = await directory.add_subscriber(
        {"name": "sikesra", "opd": "dinsos", "mode": "webhook", "webhook_url": "https://x/h"}
    )
    assert key is not None and secret is not None
    conn = await connect(fresh_db)
    try:
        rows = await conn.fetch(
            "SELECT entity_key, snapshot::text AS s FROM lintas.dir_changes ORDER BY seq"
        )
    finally:
        await conn.close()
    keys = [r["entity_key"] for r in rows]
    assert keys == [
        "opd:dukcapil",
        "opd:dinsos",
        "app:siak",
        f"key:{key.key_id}",
        "subscriber:sikesra",
    ]
    text = " ".join(r["s"] for r in rows)
    assert key.token[16:] not in text and secret not in text
    assert await directory.pending_changes() == len(rows)


async def test_a_transaction_block_is_all_or_nothing(directory: Directory) -> None:
    with pytest.raises(InvalidEntry):
        async with directory.transaction():
            await directory.add_opd({"code": "dukcapil", "name": "Disdukcapil"})
            await directory.add_application(_app(pse_number="wrong"))
    assert await directory.list_opds() == []
    assert await directory.pending_changes() == 0
    async with directory.transaction():
        await directory.add_opd({"code": "dukcapil", "name": "Disdukcapil"})
        await directory.add_application(_app())
    assert [a.id for a in await directory.list_applications()] == ["siak"]


async def test_activity_tracker_buffers_counts_and_makes_an_app_integrated(
    directory: Directory,
) -> None:
    from lintas.directory import ActivityTracker

    await _seed(directory)
    app, _ = await directory.add_application(_app())
    tracker = ActivityTracker(directory, interval=3600)
    for _ in range(5):
        tracker.produced(app.id)
    tracker.received(app.id, 2)
    tracker.produced("not-registered")  # dropped with a warning, never blocks the others
    report = {r.app_id: r for r in await directory.integration_report()}
    assert not report[app.id].integrated  # nothing written before the flush
    await tracker.stop()
    report = {r.app_id: r for r in await directory.integration_report()}
    assert report[app.id].integrated
    assert (report[app.id].produced_in_window, report[app.id].received_in_window) == (5, 2)
    await tracker.flush()  # nothing left to write twice
    report = {r.app_id: r for r in await directory.integration_report()}
    assert report[app.id].produced_in_window == 5

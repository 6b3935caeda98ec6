"""YAML export and import of the directory on the real database: round trips between two
databases, idempotence, exact updates, all-or-nothing, dry runs and prune."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from lintas.directory import (
    AppStatus,
    ChangeAction,
    Directory,
    DirectoryData,
    ImportPlan,
    InvalidApiKey,
    InvalidEntry,
    NotFound,
    SubscriberStatus,
    apply_import,
    dump_yaml,
    export_yaml,
    load_yaml,
    plan_import,
)
from lintas.migrate import migrate
from lintas.postgres import connect
from lintas.settings import Settings

pytestmark = pytest.mark.asyncio(loop_scope="session")

SAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "directory.yaml"
TABLES = (
    "dir_opds",
    "dir_applications",
    "dir_api_keys",
    "dir_subscribers",
    "dir_webhook_secrets",
    "dir_subscriptions",
    "dir_changes",
)

Env = tuple[Directory, str]


@pytest_asyncio.fixture(loop_scope="session")
async def new_directory(pg_dsn: str, tmp_path: Path) -> AsyncIterator[Callable[[], Awaitable[Env]]]:
    """``await new_directory()``: a Directory on a new, migrated database, and its DSN.

    Like the ``fresh_db`` fixture, but as many databases as a test needs (a round trip
    moves a directory from one to another).
    """
    admin = await connect(pg_dsn)
    made: list[tuple[str, Directory]] = []

    async def make() -> Env:
        name = f"lintas_test_{uuid.uuid4().hex[:10]}"
        await admin.execute(f'CREATE DATABASE "{name}"')
        dsn = f"{pg_dsn.rpartition('/')[0]}/{name}"
        await migrate(dsn)
        settings = Settings(data_dir=tmp_path, pg_dsn=dsn)
        directory = await Directory.open(settings, pg_dsn=dsn, publish=False)
        made.append((name, directory))
        return directory, dsn

    try:
        yield make
    finally:
        for name, directory in made:
            await directory.close()
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _sample() -> DirectoryData:
    return load_yaml(SAMPLE.read_text(encoding="utf-8"))


async def _import(directory: Directory, data: DirectoryData, *, prune: bool = False) -> Any:
    return await apply_import(directory, await plan_import(directory, data, prune=prune))


async def _rows(dsn: str) -> dict[str, int]:
    conn = await connect(dsn)
    try:
        return {t: await conn.fetchval(f"SELECT count(*) FROM lintas.{t}") for t in TABLES}
    finally:
        await conn.close()


async def _outbox_keys_since(dsn: str, seq: int) -> list[str]:
    conn = await connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT entity_key FROM lintas.dir_changes WHERE seq > $1 ORDER BY seq", seq
        )
        return [r["entity_key"] for r in rows]
    finally:
        await conn.close()


async def _last_seq(dsn: str) -> int:
    conn = await connect(dsn)
    try:
        return int(await conn.fetchval("SELECT coalesce(max(seq), 0) FROM lintas.dir_changes"))
    finally:
        await conn.close()


def _replace(data: DirectoryData, section: str, key: str, **changes: Any) -> DirectoryData:
    ident = {"opds": "code", "applications": "id"}.get(section, "name")
    entries = getattr(data, section)
    assert any(getattr(e, ident) == key for e in entries)
    new = tuple(
        e.model_validate({**e.model_dump(), **changes}) if getattr(e, ident) == key else e
        for e in entries
    )
    return data.model_copy(update={section: new})


def _without(data: DirectoryData, section: str, key: str) -> DirectoryData:
    ident = {"opds": "code", "applications": "id"}.get(section, "name")
    kept = tuple(e for e in getattr(data, section) if getattr(e, ident) != key)
    return data.model_copy(update={section: kept})


def _writes(plan: ImportPlan) -> dict[tuple[str, str], str]:
    return {(c.kind.value, c.key): c.action.value for c in plan.changes if c.action.writes}


async def test_sample_imports_and_round_trips_through_a_second_database(
    new_directory: Callable[[], Awaitable[Env]],
) -> None:
    first, _ = await new_directory()
    data = _sample()
    plan = await plan_import(first, data)
    assert {c.action for c in plan.changes} == {ChangeAction.CREATE}
    result = await apply_import(first, plan)

    # One key per application, each working; a signing secret per webhook subscriber.
    assert sorted(k.app_id for k in result.api_keys) == sorted(a.id for a in data.applications)
    for key in result.api_keys:
        assert (await first.verify_api_key(key.token)).id == key.app_id
    webhooks = {s.name for s in data.subscribers if s.webhook_url}
    assert set(result.webhook_secrets) == webhooks == {"dinkes-simpus", "dinsos-sipbansos"}
    for name, secret in result.webhook_secrets.items():
        assert await first.webhook_secrets(name) == [secret]

    exported = await export_yaml(first)
    assert exported == dump_yaml(data)
    for secret in (*(k.token for k in result.api_keys), *result.webhook_secrets.values()):
        assert secret not in exported and secret[-20:] not in exported

    second, _ = await new_directory()
    await _import(second, load_yaml(exported))
    assert await export_yaml(second) == exported


async def test_importing_the_same_file_twice_writes_nothing_the_second_time(
    new_directory: Callable[[], Awaitable[Env]],
) -> None:
    directory, dsn = await new_directory()
    await _import(directory, _sample())
    before = await _rows(dsn)
    assert before["dir_changes"] > 0

    again = await plan_import(directory, load_yaml(await export_yaml(directory)))
    assert {c.action for c in again.changes} == {ChangeAction.UNCHANGED}
    assert not again.has_changes
    result = await apply_import(directory, again)
    assert result.applied == () and result.api_keys == () and result.webhook_secrets == {}
    assert await _rows(dsn) == before  # not one outbox row, key or secret more


async def test_a_changed_file_applies_exactly_its_updates(
    new_directory: Callable[[], Awaitable[Env]],
) -> None:
    directory, dsn = await new_directory()
    first = await _import(directory, _sample())
    keys = {k.app_id: k for k in first.api_keys}
    seq = await _last_seq(dsn)

    target = _replace(_sample(), "applications", "simpus", pse_number="000124.01/DJAI.PSE/08/2023")
    target = _replace(target, "applications", "aduan-warga", status="retired")
    target = _replace(
        target, "subscribers", "dasbor-kinerja", mode="webhook",
        webhook_url="https://dasbor.diskominfo.bandung.example/hook",
    )  # fmt: skip
    target = _replace(target, "subscriptions", "dinsos-kematian", fields=["nik", "nomor_kk"])
    target = _replace(target, "subscriptions", "dinsos-pindah-datang", status="active")
    text = dump_yaml(target)

    plan = await plan_import(directory, load_yaml(text))
    assert _writes(plan) == {
        ("application", "aduan-warga"): "update",
        ("application", "simpus"): "update",
        ("subscriber", "dasbor-kinerja"): "update",
        ("subscription", "dinsos-kematian"): "update",
        ("subscription", "dinsos-pindah-datang"): "update",
    }
    fields = {c.key: {f.field: (f.old, f.new) for f in c.fields} for c in plan.changes}
    assert fields["simpus"] == {
        "pse_number": ("000123.01/DJAI.PSE/07/2022", "000124.01/DJAI.PSE/08/2023")
    }
    assert fields["aduan-warga"] == {"status": ("testing", "retired")}
    assert fields["dasbor-kinerja"] == {
        "mode": ("kafka", "webhook"),
        "webhook_url": (None, "https://dasbor.diskominfo.bandung.example/hook"),
    }
    assert fields["dinsos-kematian"] == {
        "fields": (
            ["nik", "nomor_kk", "tanggal_kematian", "nomor_akta_kematian", "kode_wilayah"],
            ["nik", "nomor_kk"],
        )
    }
    assert fields["dinsos-pindah-datang"] == {"status": ("paused", "active")}

    result = await apply_import(directory, plan)
    assert await export_yaml(directory) == text
    assert result.api_keys == ()
    # A subscriber switched to webhook gets its first signing secret with the import.
    assert list(result.webhook_secrets) == ["dasbor-kinerja"]
    assert await directory.webhook_secrets("dasbor-kinerja") == [
        result.webhook_secrets["dasbor-kinerja"]
    ]
    # Retiring through the file revokes the keys, as `lintas apps retire` does.
    with pytest.raises(InvalidApiKey):
        await directory.verify_api_key(keys["aduan-warga"].token)
    assert (await directory.verify_api_key(keys["simpus"].token)).id == "simpus"
    touched = set(await _outbox_keys_since(dsn, seq))
    assert {k for k in touched if not k.startswith("key:")} == {
        "app:aduan-warga",
        "app:simpus",
        "subscriber:dasbor-kinerja",
        "subscription:dinsos-kematian",
        "subscription:dinsos-pindah-datang",
    }
    assert not (await plan_import(directory, load_yaml(text))).has_changes


async def test_an_invalid_entry_in_the_middle_of_a_file_writes_nothing(
    new_directory: Callable[[], Awaitable[Env]],
) -> None:
    directory, dsn = await new_directory()
    empty = await _rows(dsn)
    bad = _replace(_sample(), "applications", "siak-bandung", produces=["dukcapil.nope.v1"])
    with pytest.raises(InvalidEntry) as exc:
        await plan_import(directory, bad)
    assert [p.field for p in exc.value.problems] == ["applications[3].produces"]
    assert await _rows(dsn) == empty


async def test_a_change_refused_midway_through_the_apply_rolls_everything_back(
    new_directory: Callable[[], Awaitable[Env]],
) -> None:
    directory, dsn = await new_directory()
    plan = await plan_import(directory, _sample())
    # Someone registers an application with one of the file's ids after the plan was made:
    # the import gets through the OPDs and the first applications, then is refused.
    await directory.add_opd({"code": "dishub", "name": "Dinas Perhubungan"})
    await directory.add_application({"id": "simpus", "name": "SIMPUS", "opd": "dishub",
                                     "method": "sdk"}, issue_key=False)  # fmt: skip
    before = await _rows(dsn)
    with pytest.raises(InvalidEntry) as exc:
        await apply_import(directory, plan)
    assert [p.field for p in exc.value.problems] == ["applications[5].id"]
    assert "is taken by another application" in exc.value.problems[0].rule
    assert await _rows(dsn) == before
    assert [o.code for o in await directory.list_opds()] == ["dishub"]
    assert [a.id for a in await directory.list_applications()] == ["simpus"]


async def test_a_dry_run_plans_and_writes_nothing(
    new_directory: Callable[[], Awaitable[Env]],
) -> None:
    directory, dsn = await new_directory()
    await _import(directory, _sample())
    before, exported = await _rows(dsn), await export_yaml(directory)
    target = _without(_sample(), "subscriptions", "dasbor-pengaduan")
    target = _replace(target, "opds", "dinsos", contact="Sekretariat Dinas Sosial")
    plan = await plan_import(directory, target, prune=True)  # what --dry-run --prune does
    assert _writes(plan) == {
        ("opd", "dinsos"): "update",
        ("subscription", "dasbor-pengaduan"): "delete",
    }
    assert await _rows(dsn) == before
    assert await export_yaml(directory) == exported


async def test_prune_removes_without_deleting_what_history_refers_to(
    new_directory: Callable[[], Awaitable[Env]],
) -> None:
    directory, dsn = await new_directory()
    keys = {k.app_id: k for k in (await _import(directory, _sample())).api_keys}
    target = _without(_sample(), "subscriptions", "dasbor-pengaduan")
    target = _without(target, "subscribers", "dasbor-kinerja")
    target = _without(target, "applications", "aduan-warga")
    target = _without(target, "opds", "diskominfo")

    kept = await plan_import(directory, target)
    assert _writes(kept) == {}  # without prune, what the file lacks stays

    plan = await plan_import(directory, target, prune=True)
    assert _writes(plan) == {
        ("subscription", "dasbor-pengaduan"): "delete",
        ("subscriber", "dasbor-kinerja"): "disable",
        ("application", "aduan-warga"): "retire",
    }
    await apply_import(directory, plan)
    with pytest.raises(NotFound):
        await directory.get_subscription("dasbor-pengaduan")
    assert (await directory.get_subscriber("dasbor-kinerja")).status is SubscriberStatus.DISABLED
    assert (await directory.get_application("aduan-warga")).status is AppStatus.RETIRED
    with pytest.raises(InvalidApiKey):
        await directory.verify_api_key(keys["aduan-warga"].token)
    assert "diskominfo" in {o.code for o in await directory.list_opds()}

    before = await _rows(dsn)
    again = await plan_import(directory, target, prune=True)
    assert not again.has_changes
    await apply_import(directory, again)
    assert await _rows(dsn) == before

"""Analyst access: the roles, the masked views and ``lintas query``, against the real store.

The data goes in through the real sink (canonical records of a small Pemda story); the
queries run through the real ``lintas`` process, as an analyst would run them.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import lokal
import pytest
import pytest_asyncio
from store_helpers import (
    BANSOS,
    IZIN,
    KEMATIAN,
    KK,
    PAJAK,
    fresh_database,
    new_prefix,
    running_sink,
    wait_until,
)

from lintas.consumers.sinks.testing import CanonicalTopics, canonical_event
from lintas.kafka import KafkaConnection
from lintas.postgres import connect
from lintas.schemas import example_event
from lintas.schemas.registry import SchemaRegistryClient

WIB = dt.timezone(dt.timedelta(hours=7))
NIK_A = "3273015209680002"  # Enok Sumiati, the example recipient: dies in March 2025
NIK_B = "3273011204700005"  # alive


def _at(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day + "T09:00:00").replace(tzinfo=WIB)


def _story() -> dict[Any, list[dict[str, Any]]]:
    kk = example_event(KK)
    kk["anggota"] = [
        dict(kk["anggota"][0]),
        {**kk["anggota"][1], "nik": NIK_A, "nama": "Enok Sumiati"},
    ]
    death = {
        **example_event(KEMATIAN),
        "nik": NIK_A,
        "nama": "Enok Sumiati",
        "tanggal_kematian": dt.date(2025, 3, 1),
    }
    aid = example_event(BANSOS)
    aid_before = {**aid, "disalurkan_pada": _at("2025-02-05")}
    aid_after = {**aid, "disalurkan_pada": _at("2025-05-05")}
    aid_alive = {
        **aid,
        "nik": NIK_B,
        "nama": "Dadang Suhendar",
        "disalurkan_pada": _at("2025-05-05"),
    }
    permit = example_event(IZIN)  # Warung Nasi Bu Imas, issued 2025-07-01
    other_permit = {**permit, "nomor_izin": "503/0999-PB/DPMPTSP/2025", "nama_usaha": "Toko Lain"}
    tax = example_event(PAJAK)  # the same business and village, paid 2025-08-15
    tax_case = {
        **tax,
        "ntpd": "2",
        "nama_wajib_pajak": "WARUNG NASI  BU IMAS",
        "jumlah_dibayar": Decimal("125000.00"),
    }
    tax_before = {**tax, "ntpd": "3", "dibayar_pada": _at("2025-06-01")}
    tax_other = {**tax, "ntpd": "4", "nama_wajib_pajak": "Bakso Mang Ujang"}
    return {
        KK: [canonical_event(KK, kk, time=_at("2025-01-10"))],
        BANSOS: [
            canonical_event(BANSOS, aid_before, time=_at("2025-02-05")),
            canonical_event(BANSOS, aid_after, time=_at("2025-05-05")),
            canonical_event(BANSOS, aid_alive, time=_at("2025-05-05")),
        ],
        KEMATIAN: [canonical_event(KEMATIAN, death, time=_at("2025-03-02"))],
        IZIN: [
            canonical_event(IZIN, permit, time=_at("2025-07-01")),
            canonical_event(IZIN, other_permit, time=_at("2025-07-01")),
        ],
        PAJAK: [
            canonical_event(PAJAK, p, time=_at("2025-08-15"))
            for p in (tax, tax_case, tax_before, tax_other)
        ],
    }


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def store(kafka_conn: KafkaConnection, registry_url: str, pg_dsn: str) -> AsyncIterator[str]:
    """A store holding the story, written by the sink; its DSN (one for the module: the
    tests only read)."""
    async with fresh_database(pg_dsn) as dsn, SchemaRegistryClient(registry_url) as registry:
        topics = CanonicalTopics(kafka_conn, registry, new_prefix("a"))
        story = _story()
        try:
            await topics.create(story, partitions=1)
            for event_type, events in story.items():
                await topics.produce(event_type, events)
            total = sum(len(e) for e in story.values())
            async with running_sink(kafka_conn, dsn, registry, topics.prefix):
                stored = await wait_until(
                    dsn, "SELECT count(*) FROM store.raw_events", lambda n: n >= total
                )
            assert stored == total
        finally:
            await topics.close()
        yield dsn


def lintas_query(dsn: str, sql: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LINTAS_PG_DSN": dsn}
    return subprocess.run(
        [sys.executable, "-m", "lintas.cli", "query", sql, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _json(dsn: str, sql: str, *args: str) -> list[dict[str, Any]]:
    done = lintas_query(dsn, sql, "--format", "json", *args)
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def test_aid_after_death_is_found_with_personal_data_masked(store: str) -> None:
    sql = (
        "SELECT citizen_key, nik, nama, tanggal_kematian, paid_after_death, days_after_death "
        "FROM analytics.aid_recipients_deceased ORDER BY disalurkan_pada"
    )
    masked = _json(store, sql)
    assert [r["paid_after_death"] for r in masked] == [False, True]
    assert [r["days_after_death"] for r in masked] == [-24, 65]
    assert {r["nik"] for r in masked} == {lokal.partial_mask("NIK", NIK_A)}
    assert {r["nama"] for r in masked} == {lokal.partial_mask("NAME", "Enok Sumiati")}
    unmasked = _json(store, sql, "--pii")
    assert {r["nik"] for r in unmasked} == {NIK_A}
    assert {r["nama"] for r in unmasked} == {"Enok Sumiati"}
    # The pseudonym is the same for both roles and never the NIK itself.
    assert {r["citizen_key"] for r in masked} == {r["citizen_key"] for r in unmasked}
    assert NIK_A not in masked[0]["citizen_key"]


def test_the_citizen_timeline_follows_one_nik_across_opds_in_time_order(store: str) -> None:
    (key,) = {
        r["citizen_key"]
        for r in _json(store, "SELECT citizen_key FROM analytics.aid_recipients_deceased")
    }
    timeline = _json(
        store,
        "SELECT nik, opd, event_type, event_time, payload FROM analytics.citizen_timeline "
        f"WHERE citizen_key = '{key}'",
    )
    assert [r["event_type"] for r in timeline] == [
        KK.id,  # a member of a family card
        BANSOS.id,
        KEMATIAN.id,
        BANSOS.id,
    ]
    assert [r["opd"] for r in timeline] == ["dukcapil", "dinsos", "dukcapil", "dinsos"]
    assert timeline[0]["event_time"] == "2025-01-10T09:00:00+07:00"  # the display zone
    assert {r["nik"] for r in timeline} == {lokal.partial_mask("NIK", NIK_A)}
    # Masked payloads keep what is not personal and drop what is.
    death = timeline[2]["payload"]
    assert death["tanggal_kematian"] == "2025-03-01" and "nama" not in death and "nik" not in death
    pii_death = _json(
        store,
        f"SELECT payload FROM analytics.citizen_timeline WHERE nik = '{NIK_A}' "
        f"AND event_type = '{KEMATIAN.id}'",
        "--pii",
    )
    assert pii_death[0]["payload"]["nama"] == "Enok Sumiati"


def test_permits_are_joined_with_the_tax_their_business_paid_since(store: str) -> None:
    done = lintas_query(
        store,
        "SELECT nomor_izin, nama_usaha, payments, total_paid, npwpd, npwp "
        "FROM analytics.permits_with_tax ORDER BY nomor_izin",
        "--format",
        "csv",
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [(r["nama_usaha"], r["payments"], r["total_paid"]) for r in rows] == [
        ("Warung Nasi Bu Imas", "2", "2000000.00"),  # 1,875,000 + 125,000; not the June one
        ("Toko Lain", "0", "0"),
    ]
    assert rows[0]["npwpd"] == '["P.2.0004512.03.01"]'
    assert rows[0]["npwp"] == lokal.partial_mask("NPWP", "0912345674280000")


def test_daily_counts_add_up_to_every_event(store: str) -> None:
    rows = _json(store, "SELECT day, opd, event_type, events FROM analytics.daily_counts")
    assert sum(r["events"] for r in rows) == 11
    assert {"day": "2025-08-15", "opd": "bapenda", "event_type": PAJAK.id, "events": 4} in rows


def test_type_views_mask_nested_personal_data(store: str) -> None:
    (masked,) = _json(store, "SELECT nik, anggota FROM analytics.dukcapil_kk_diperbarui_v1")
    assert re.fullmatch(r"3273\*{8}[0-9]{4}", masked["nik"])
    assert [set(m) for m in masked["anggota"]] == [{"hubungan", "jenis_kelamin"}] * 2
    (unmasked,) = _json(store, "SELECT anggota FROM analytics.dukcapil_kk_diperbarui_v1", "--pii")
    assert unmasked["anggota"][1]["nik"] == NIK_A


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT count(*) FROM store.raw_events", "permission denied for schema store"),
        ("SELECT * FROM lintas.sink_offsets", "permission denied for schema lintas"),
        ("CREATE TABLE analytics.mine (x int)", "permission denied for schema analytics"),
        (
            "DELETE FROM analytics.dukcapil_kk_diperbarui_v1",
            "permission denied for view dukcapil_kk_diperbarui_v1",
        ),
    ],
)
def test_the_database_refuses_what_analysts_may_not_do(store: str, sql: str, message: str) -> None:
    done = lintas_query(store, sql)
    assert done.returncode == 1
    assert "The database refused the query: " + message in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("pii", [False, True])
def test_an_insert_fails_with_the_databases_permission_error(store: str, pii: bool) -> None:
    done = lintas_query(
        store,
        "INSERT INTO store.raw_events (event_id, event_type, opd, payload, kafka_topic, "
        "kafka_partition, kafka_offset) VALUES ('x', 't', 'o', '{}', 't', 0, 0)",
        *(["--pii"] if pii else []),
    )
    assert done.returncode == 1
    assert done.stderr.startswith(
        "error: The database refused the query: permission denied for schema store "
        "(SQLSTATE 42501)."
    )
    assert "Traceback" not in done.stderr


async def test_sql_masks_match_the_platforms_partial_masks(store: str) -> None:
    conn = await connect(store)
    try:
        for kind, lokal_type, value in [
            ("nik", "NIK", NIK_A),
            ("nomor_kk", "KK", "3273011002080031"),
            ("nama", "NAME", "Muhammad Fadil Hidayat"),
            ("telepon", "PHONE", "+6281234567890"),
            ("npwp", "NPWP", "0912345674280000"),
            ("email", "EMAIL", "budi@gmail.com"),
        ]:
            masked = await conn.fetchval("SELECT analytics.mask($1, $2)", value, kind)
            assert masked == lokal.partial_mask(lokal_type, value), kind
        assert await conn.fetchval("SELECT analytics.mask('Jl. Merdeka 1', 'alamat')") is None
    finally:
        await conn.close()

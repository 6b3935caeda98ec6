"""Validation rules: NIK, kode wilayah, dates, amounts, nested paths, and the RULES table."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from lintas.schemas import build_nik, example_event, load_catalog
from lintas.streams._paths import schema_fields
from lintas.streams.dlq import Reason
from lintas.streams.rules import (
    NOT_CHECKED,
    RULES,
    RuleContext,
    contract_rules,
    derived_rules,
    nik,
    non_negative,
    not_before,
    not_future,
    rules_for,
    wilayah,
)

NOW = dt.datetime(2025, 6, 10, 3, 0, tzinfo=dt.UTC)
CTX = RuleContext(now=NOW, future_skew=dt.timedelta(minutes=5))
CATALOG = load_catalog()
MAN = build_nik("32.73.01", dt.date(1948, 8, 21), perempuan=False, nomor_urut=1)
WOMAN = build_nik("32.73.01", dt.date(1994, 3, 17), perempuan=True, nomor_urut=12)


def _check(rule, record):
    return list(rule.check(record, CTX))


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("9973012108480001", "unknown province"),
        ("3273992108480001", "district 32.73.99"),
        ("3273013213480001", "valid birth date"),
        ("3273010008480001", "valid birth date"),
        ("3273012108480000", "serial number 0000"),
        ("32730121084800", "16 digits"),
    ],
)
def test_a_nik_that_cannot_exist_is_named_with_its_flaw(value: str, words: str) -> None:
    [violation] = _check(nik("nik"), {"nik": value})
    assert violation.reason is Reason.INVALID_NIK
    assert violation.field == "nik"
    assert words in violation.message and value in violation.message


def test_a_valid_nik_passes_and_missing_optional_niks_are_skipped() -> None:
    assert _check(nik("nik"), {"nik": MAN}) == []
    assert _check(nik("nik_pelapor"), {"nik_pelapor": None}) == []


def test_the_nik_sex_digit_must_match_the_declared_sex() -> None:
    rule = nik("nik", sex="jenis_kelamin")
    assert _check(rule, {"nik": MAN, "jenis_kelamin": "LAKI_LAKI"}) == []
    assert _check(rule, {"nik": WOMAN, "jenis_kelamin": "PEREMPUAN"}) == []
    [violation] = _check(rule, {"nik": MAN, "jenis_kelamin": "PEREMPUAN"})
    assert "encodes sex LAKI_LAKI but the event says PEREMPUAN" in violation.message
    [violation] = _check(nik("nik_ibu", expect="PEREMPUAN"), {"nik_ibu": MAN})
    assert violation.field == "nik_ibu"


def test_nested_paths_name_the_item() -> None:
    record = {
        "anggota": [
            {"nik": MAN, "jenis_kelamin": "LAKI_LAKI"},
            {"nik": MAN, "jenis_kelamin": "PEREMPUAN"},
        ]
    }
    [violation] = _check(nik("anggota[].nik", sex="jenis_kelamin"), record)
    assert violation.field == "anggota[1].nik"


def test_kode_wilayah_must_exist_at_its_level() -> None:
    for code in ("32", "32.73", "32.73.01", "32.73.01.1001"):
        assert _check(wilayah("kode_wilayah")[0], {"kode_wilayah": code}) == []
    [violation] = _check(wilayah("kode_wilayah")[0], {"kode_wilayah": "32.73.01.9999"})
    assert (violation.reason, violation.field) == (Reason.UNKNOWN_WILAYAH, "kode_wilayah")


def test_dates_and_times_may_not_lie_in_the_future_beyond_the_skew() -> None:
    [date_rule] = not_future("d")
    assert _check(date_rule, {"d": dt.date(2025, 6, 10)}) == []
    [violation] = _check(date_rule, {"d": dt.date(2025, 6, 11)})
    assert violation.reason is Reason.FUTURE_DATE
    # At 16:00 UTC it is already 11 June in WIT (UTC+9): that date is today in Papua.
    evening = RuleContext(now=dt.datetime(2025, 6, 10, 16, 0, tzinfo=dt.UTC))
    assert list(date_rule.check({"d": dt.date(2025, 6, 11)}, evening)) == []
    assert _check(date_rule, {"d": NOW + dt.timedelta(minutes=4)}) == []
    assert len(_check(date_rule, {"d": NOW + dt.timedelta(minutes=6)})) == 1


def test_amounts_may_not_be_negative() -> None:
    [rule] = non_negative("nilai")
    assert _check(rule, {"nilai": Decimal("0.00")}) == []
    [violation] = _check(rule, {"nilai": Decimal("-1.00")})
    assert (violation.reason, violation.field) == (Reason.NEGATIVE_AMOUNT, "nilai")


def test_dates_in_an_impossible_order_are_refused() -> None:
    rule = not_before("tanggal_kematian", "tanggal_lahir")
    ok = {"tanggal_lahir": dt.date(1948, 8, 21), "tanggal_kematian": dt.date(2025, 6, 7)}
    assert _check(rule, ok) == []
    bad = {**ok, "tanggal_kematian": dt.date(1940, 1, 1)}
    [violation] = _check(rule, bad)
    assert violation.reason is Reason.DATE_ORDER
    mixed = {"a": NOW, "b": dt.date(2025, 6, 11)}
    assert len(_check(not_before("a", "b"), mixed)) == 1


@pytest.mark.parametrize("event_type", list(CATALOG), ids=lambda t: t.id)
def test_every_catalog_example_passes_its_rules(event_type) -> None:
    ctx = RuleContext(now=dt.datetime.now(dt.UTC))
    assert rules_for(event_type).check(example_event(event_type), ctx) == []


@pytest.mark.parametrize("event_type", list(CATALOG), ids=lambda t: t.id)
def test_the_rules_table_covers_every_event_type_and_names_real_fields(event_type) -> None:
    assert event_type.id in RULES, "add the event type's domain rules to RULES"
    fields = schema_fields(event_type)
    for rule in RULES[event_type.id]:
        for path in rule.fields:
            assert path in fields, f"{rule.key()} names {path}, not a field of {event_type.id}"


@pytest.mark.parametrize("event_type", list(CATALOG), ids=lambda t: t.id)
def test_the_rules_table_checks_what_the_contract_implies(event_type) -> None:
    listed = {rule.key()[:2] for rule in RULES[event_type.id]}
    exempt = NOT_CHECKED.get(event_type.id, {})
    for rule in derived_rules(event_type):
        kind, path = rule.key()[:2]
        if path not in exempt:
            assert (kind, path) in listed, f"{event_type.id}: no {kind} rule for {path}"


def test_contract_patterns_are_rules_too() -> None:
    kematian = CATALOG.get("dukcapil.kematian_dicatat.v1")
    paths = {rule.fields[0] for rule in contract_rules(kematian)}
    assert {"nik", "nomor_kk", "nik_pelapor", "kode_wilayah"} <= paths
    record = {**example_event(kematian), "nomor_kk": "12345"}
    [violation] = rules_for(kematian).check(record, RuleContext(now=dt.datetime.now(dt.UTC)))
    assert (violation.reason, violation.field) == (Reason.INVALID_FIELD, "nomor_kk")


def test_types_outside_the_table_get_rules_derived_from_their_tags() -> None:
    kk = CATALOG.get("dukcapil.kk_diperbarui.v1")
    keys = {rule.key() for rule in derived_rules(kk)}
    assert ("nik", "anggota[].nik", "jenis_kelamin", None) in keys
    assert ("wilayah", "kode_wilayah") in keys
    assert ("not_future", "anggota[].tanggal_lahir") in keys
    pajak = CATALOG.get("bapenda.pajak_dibayar.v1")
    assert ("non_negative", "jumlah_dibayar") in {rule.key() for rule in derived_rules(pajak)}

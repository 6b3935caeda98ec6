"""Value transforms of mapping files."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from zoneinfo import ZoneInfo

import pytest

from lintas.producers.capture.transforms import TransformFailed, build_transform

WIB = ZoneInfo("Asia/Jakarta")


def t(spec: object, value: object) -> object:
    return build_transform(spec, WIB)(value)


def test_text_transforms() -> None:
    assert t("strip", "  a ") == "a"
    assert t("upper", "qris") == "QRIS"
    assert t("digits", "3273-01.1001") == "3273011001"
    assert t("str", 12) == "12"
    assert t({"format": "SSPD-{}"}, 7) == "SSPD-7"
    assert t("strip", None) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("32", "32"),
        ("3273", "32.73"),
        ("327301", "32.73.01"),
        ("3273011001", "32.73.01.1001"),
        ("32.73.01.1001", "32.73.01.1001"),
    ],
)
def test_kode_wilayah(value: str, expected: str) -> None:
    assert t("kode_wilayah", value) == expected


def test_kode_wilayah_refuses_other_lengths() -> None:
    with pytest.raises(TransformFailed, match="2, 4, 6 or 10 digits"):
        t("kode_wilayah", "32731")


def test_numbers_and_flags() -> None:
    assert t("int", "0042") == 42
    assert t("int", decimal.Decimal("3.0")) == 3
    with pytest.raises(TransformFailed):
        t("int", "3.5")
    assert t({"decimal": 2}, "1875000,5") == decimal.Decimal("1875000.50")
    assert t("bool", "Y") is True and t("bool", 0) is False
    with pytest.raises(TransformFailed):
        t("bool", "mungkin")


def test_dates_and_times() -> None:
    assert t({"date": "%d/%m/%Y"}, "15/08/2025") == dt.date(2025, 8, 15)
    assert t("date", dt.datetime(2025, 8, 15, 23, 0)) == dt.date(2025, 8, 15)
    wita = t(
        {"datetime": {"timezone": "Asia/Makassar", "format": "%d-%m-%Y %H:%M"}}, "15-08-2025 10:00"
    )
    assert isinstance(wita, dt.datetime)
    assert wita.astimezone(dt.UTC) == dt.datetime(2025, 8, 15, 2, 0, tzinfo=dt.UTC)
    assert t("datetime", dt.datetime(2025, 8, 15, 10, 0)).utcoffset() == dt.timedelta(hours=7)
    with pytest.raises(TransformFailed):
        t("date", "kemarin")


def test_map_null_if_default() -> None:
    spec = {"map": {"01": "PBB_P2", "_default": "LAINNYA"}}
    assert t(spec, "01") == "PBB_P2" and t(spec, "77") == "LAINNYA"
    with pytest.raises(TransformFailed, match="no mapping for value '77'"):
        t({"map": {"01": "PBB_P2"}}, "77")
    assert t({"null_if": ["", "-"]}, " - ") is None
    assert t({"default": 0}, None) == 0


def test_uuid5_is_stable_and_keeps_uuids() -> None:
    given = str(uuid.uuid4())
    assert t("uuid5", given) == given
    assert t({"uuid5": "bansos/"}, 42) == t({"uuid5": "bansos/"}, "42")
    assert t({"uuid5": "bansos/"}, 42) != t({"uuid5": "pkh/"}, 42)


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("trim", "unknown transform"),
        ("map", "needs an argument"),
        ({"decimal": "2"}, "places"),
        ({"datetime": {"timezone": "Asia/Bandung"}}, "unknown time zone"),
        ({"datetime": {"tz": "UTC"}}, "no option"),
        ({"a": 1, "b": 2}, "name or"),
    ],
)
def test_bad_specs_are_refused(spec: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        build_transform(spec, WIB)

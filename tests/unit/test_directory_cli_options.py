"""The directory commands' own parsing, without services: durations, --where, previews."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from lintas.cli import app
from lintas.cli._dir_common import InvalidOption, parse_duration, parse_where
from lintas.cli._preview import Outcome, evaluate
from lintas.directory import Subscription, matched_event_types
from lintas.schemas import example_event, load_catalog

runner = CliRunner()


def _types(*patterns: str) -> list[Any]:
    return matched_event_types(patterns, load_catalog())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", dt.timedelta(0)),
        ("90s", dt.timedelta(seconds=90)),
        ("30m", dt.timedelta(minutes=30)),
        ("24h", dt.timedelta(hours=24)),
        ("7d", dt.timedelta(days=7)),
    ],
)
def test_durations(text: str, expected: dt.timedelta) -> None:
    assert parse_duration("--overlap", text) == expected


@pytest.mark.parametrize("text", ["", "7", "7 days", "1w", "-1d", "1.5h", "d"])
def test_bad_duration_names_the_option_and_the_rule(text: str) -> None:
    with pytest.raises(InvalidOption) as exc:
        parse_duration("--overlap", text)
    assert exc.value.option == "--overlap"
    assert "--overlap" in exc.value.message and "30m, 24h or 7d" in exc.value.message


def test_where_values_take_the_type_of_their_field() -> None:
    kematian = _types("dukcapil.kematian_dicatat.v1")
    assert parse_where(["jenis_kelamin=PEREMPUAN", "kode_wilayah=32.73.01.1001"], kematian) == {
        "jenis_kelamin": "PEREMPUAN",
        "kode_wilayah": "32.73.01.1001",
    }
    assert parse_where(["sebab_kematian=null"], kematian) == {"sebab_kematian": None}
    pengaduan = _types("diskominfo.pengaduan_*")
    assert parse_where(["anonim=FALSE", "rating_kepuasan=5"], pengaduan) == {
        "anonim": False,
        "rating_kepuasan": 5,
    }
    pajak = _types("bapenda.pajak_dibayar.v1")
    assert parse_where(["jumlah_dibayar=1500.50", "denda=0"], pajak) == {
        "jumlah_dibayar": 1500.5,
        "denda": 0,
    }
    # Unknown fields stay text: the directory refuses them naming the field.
    assert parse_where(["gaji=10"], kematian) == {"gaji": "10"}


@pytest.mark.parametrize(
    ("item", "rule"),
    [
        ("jenis_kelamin", "FIELD=VALUE"),
        ("=PEREMPUAN", "FIELD=VALUE"),
        ("anggota.nik=1", "FIELD=VALUE"),
        ("jenis_kelamin=WANITA", "one of LAKI_LAKI, PEREMPUAN"),
        ("anonim=ya", "true or false"),
        ("rating_kepuasan=lima", "whole number"),
        ("jumlah_dibayar=banyak", "a number"),
    ],
)
def test_bad_where_names_the_option_and_the_rule(item: str, rule: str) -> None:
    types = _types("dukcapil.kematian_dicatat.v1", "diskominfo.*", "bapenda.*")
    with pytest.raises(InvalidOption) as exc:
        parse_where([item], types)
    assert exc.value.option.startswith("--where")
    assert rule in exc.value.message


def test_where_twice_on_one_field_is_refused() -> None:
    with pytest.raises(InvalidOption, match="twice"):
        parse_where(["nik=1", "nik=2"], _types("dukcapil.kematian_dicatat.v1"))


def _subscription(**over: Any) -> Subscription:
    data: dict[str, Any] = {
        "name": "kematian-untuk-dinsos",
        "subscriber": "sikesra",
        "event_types": ["dukcapil.kematian_dicatat.v1"],
        "fields": ["nik", "tanggal_kematian"],
        "purpose": "Penghentian bansos bagi penerima yang meninggal.",
        **over,
    }
    return Subscription.model_validate(data)


def test_typed_where_values_match_decoded_records() -> None:
    pajak = _types("bapenda.pajak_dibayar.v1")
    record = example_event("bapenda.pajak_dibayar.v1")
    amount = record["jumlah_dibayar"]
    assert isinstance(amount, Decimal)
    flt = {"equals": parse_where([f"jumlah_dibayar={amount}"], pajak)}
    sub = _subscription(
        event_types=["bapenda.pajak_dibayar.v1"], fields=["jumlah_dibayar"], filter=flt
    )
    assert evaluate(sub, "bapenda.pajak_dibayar.v1", record) == (
        Outcome.MATCHED,
        {"jumlah_dibayar": amount},
    )


def test_evaluate_projects_only_the_allowed_fields() -> None:
    record = example_event("dukcapil.kematian_dicatat.v1")
    sub = _subscription(filter={"equals": {"jenis_kelamin": record["jenis_kelamin"]}})
    outcome, delivered = evaluate(sub, "dukcapil.kematian_dicatat.v1", record)
    assert outcome is Outcome.MATCHED
    assert delivered == {"nik": record["nik"], "tanggal_kematian": record["tanggal_kematian"]}
    other = _subscription(filter={"equals": {"jenis_kelamin": "TIDAK_ADA"}})
    assert evaluate(other, "dukcapil.kematian_dicatat.v1", record) == (Outcome.NOT_MATCHED, None)


def test_the_directory_commands_are_registered_with_help() -> None:
    root = typer.main.get_command(app)
    groups: dict[str, Any] = getattr(root, "commands", {})
    expected = {
        "opd": {"add", "list"},
        "apps": {"add", "list", "show", "rotate-key", "revoke", "retire", "update"},
        "subscribers": {
            "add", "list", "show", "rotate-secret", "pause", "resume", "disable",
        },
        "subscriptions": {
            "add", "update", "list", "show", "remove", "pause", "resume", "test",
        },
        "directory": {"publish", "status", "export", "import"},
    }  # fmt: skip
    for group, commands in expected.items():
        assert commands <= set(groups[group].commands), group
        for command in commands:
            result = runner.invoke(app, [group, command, "--help"])
            assert result.exit_code == 0, result.output
            if command != "export":  # export writes YAML
                assert "--json" in result.output, f"{group} {command} has no --json"

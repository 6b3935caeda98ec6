"""Mapping files: compiled against the catalog, refused with the line and the reason."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from lintas.producers.capture import Change, MappingInvalid, Op, load_mapping
from lintas.producers.capture._yaml import Located
from lintas.producers.capture.mapping import parse_mapping

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "capture"
WIB = ZoneInfo("Asia/Jakarta")


def _mapping(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.mapping.yaml"
    path.write_text(text)
    return path


def _row(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id_setoran": 7,
        "no_sspd": "3273000000000007",
        "kd_billing": " 327325000000007 ",
        "npwpd": " P.2.0000007.03.01 ",
        "nm_wp": "Warung 7",
        "kd_pajak": "01",
        "thn_pajak": 2025,
        "masa_pajak": 8,
        "pokok": decimal.Decimal("1000000.00"),
        "denda": decimal.Decimal("0.00"),
        "jml_bayar": decimal.Decimal("1000000.00"),
        "kd_kanal": "qris",
        "nm_bank": "",
        "kd_prov": "32",
        "kd_kab": "73",
        "kd_kec": "02",
        "kd_kel": "1003",
        "tgl_setor": dt.datetime(2025, 8, 15, 10, 12),
    }
    row.update(overrides)
    return row


def _change(op: Op = Op.INSERT, **overrides: object) -> Change:
    return Change(table="ta_setoran", op=op, key=(7,), row=_row(**overrides), position="x:1")


def test_the_simda_example_maps_a_row_to_a_valid_event() -> None:
    mapping = load_mapping(FIXTURES / "ta_setoran.mapping.yaml", zone=WIB)
    (rule,) = mapping.rules_for(_change())
    event = rule.model.model_validate(rule.build(_row()))
    assert event.kode_wilayah == "32.73.02.1003"
    assert event.npwpd == "P.2.0000007.03.01"
    assert event.jenis_pajak == "PBJT_MAKANAN_MINUMAN"
    assert event.kanal_pembayaran == "QRIS"
    assert event.bank_persepsi is None  # "" is null
    # A naive DATETIME is read in the source's zone: 10:12 WIB is 03:12 UTC.
    assert event.dibayar_pada == dt.datetime(2025, 8, 15, 3, 12, tzinfo=dt.UTC)


def test_snapshot_rows_match_insert_rules_and_deletes_match_none_here() -> None:
    mapping = load_mapping(FIXTURES / "ta_setoran.mapping.yaml", zone=WIB)
    assert mapping.rules_for(_change(Op.SNAPSHOT))
    assert mapping.rules_for(_change(Op.DELETE)) == []


def test_when_and_changed_pick_the_rule() -> None:
    mapping = load_mapping(FIXTURES / "tb_izin.mapping.yaml", zone=WIB)
    row = {"status": "DICABUT", "no_izin": "1"}
    revoked = Change(
        table="tb_izin", op=Op.UPDATE, key=(1,), row=row, position="p", before={"status": "TERBIT"}
    )
    still = Change(
        table="tb_izin", op=Op.UPDATE, key=(1,), row=row, position="p", before={"status": "DICABUT"}
    )
    draft = Change(table="tb_izin", op=Op.INSERT, key=(1,), row={"status": "DRAFT"}, position="p")
    assert [r.event_type.id for r in mapping.rules_for(revoked)] == ["dpmptsp.izin_dicabut.v1"]
    assert mapping.rules_for(still) == []
    assert mapping.rules_for(draft) == []
    assert mapping.needs_before_image


def test_merged_fields_are_overridden_by_the_rule_own() -> None:
    mapping = load_mapping(FIXTURES / "tb_izin.mapping.yaml", zone=WIB)
    delete_rule = mapping.rules[2]
    row = {
        "no_izin": "1",
        "nib": "1207250034517",
        "kd_kelurahan": "3273021003",
        "no_sk_cabut": None,
        "tgl_update": dt.datetime(2025, 8, 14, 16, 30),
    }
    data = delete_rule.build(row)
    assert data["alasan_pencabutan"] == "USAHA_BERHENTI"
    assert data["nomor_sk_pencabutan"] == "-"
    assert data["tanggal_pencabutan"] == dt.date(2025, 8, 14)


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        (
            "table: t\nevents:\n  - type: bapenda.pajak_dibayr.v1\n    on: [insert]\n"
            "    fields: {ntpd: a}\n",
            3,
            "Unknown event type",
        ),
        (
            "table: t\nevents:\n  - type: dpmptsp.izin_dicabut.v1\n    on: [insert]\n"
            "    fields:\n      nomor_izin: a\n      nomer_sk: b\n",
            7,
            "has no field 'nomer_sk'",
        ),
        (
            "table: t\nevents:\n  - type: dpmptsp.izin_dicabut.v1\n    on: [insert]\n"
            "    fields:\n      nomor_izin: {column: a, transform: [strip, trim]}\n",
            6,
            "unknown transform 'trim'",
        ),
        (
            "table: t\nevents:\n  - type: dpmptsp.izin_dicabut.v1\n    on: [insert]\n"
            "    fields:\n      nomor_izin: a\n",
            5,
            "needs field(s) nib",
        ),
        (
            "table: t\nevents:\n  - type: dpmptsp.izin_dicabut.v1\n    on: [upsert]\n"
            "    fields: {nomor_izin: a}\n",
            4,
            "events.0.on.0",
        ),
        (
            "table: t\nevents:\n  - type: dpmptsp.izin_dicabut.v1\n    on: [insert]\n"
            "    fields: {nomor_izin: {template: 'no columns'}}\n",
            5,
            "a template names",
        ),
        (
            "table: t\nevents:\n  - type: dpmptsp.izin_dicabut.v1\n    on: [insert]\n"
            "    fields: {nomor_izin: {column: a, value: b}}\n",
            5,
            "exactly one of",
        ),
    ],
)
def test_a_bad_mapping_is_refused_with_its_line(
    tmp_path: Path, text: str, line: int, reason: str
) -> None:
    with pytest.raises(MappingInvalid) as caught:
        load_mapping(_mapping(tmp_path, text), zone=WIB)
    assert caught.value.line == line, caught.value.message
    assert reason in caught.value.message


def test_unknown_columns_are_refused_with_the_line_that_names_them() -> None:
    mapping = load_mapping(FIXTURES / "ta_setoran.mapping.yaml", zone=WIB)
    columns = set(_row()) - {"kd_kec"}
    with pytest.raises(MappingInvalid) as caught:
        mapping.check_columns(columns, key=["id_setoran"])
    assert caught.value.line == 29 and "no column 'kd_kec'" in caught.value.message
    mapping.check_columns(set(_row()), key=["id_setoran"])  # all present: accepted


def test_a_table_without_a_key_needs_one_named() -> None:
    doc = Located(
        Path("inline.yaml"),
        {
            "table": "t",
            "events": [
                {"type": "dpmptsp.izin_terbit.v1", "on": ["insert"], "fields": {"nomor_izin": "a"}}
            ],
        },
        {(): 1, ("table",): 1},
    )
    with pytest.raises(MappingInvalid, match="needs field"):
        parse_mapping(doc, zone=WIB)


def test_numbers_become_text_for_string_fields() -> None:
    mapping = load_mapping(FIXTURES / "ta_setoran.mapping.yaml", zone=WIB)
    (rule,) = mapping.rules
    data = rule.build(_row(no_sspd=3273000000000007))
    assert data["ntpd"] == "3273000000000007"

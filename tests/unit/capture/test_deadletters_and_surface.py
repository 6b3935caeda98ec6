"""Capture dead letters carry the row's key and the reason; the package's public surface."""

from __future__ import annotations

import importlib

import orjson

from lintas.producers import capture
from lintas.producers.capture import Change, DeadRow, Op, dead_row_record, outbox_ddl


def test_a_dead_letter_names_the_row_and_the_rule() -> None:
    change = Change(
        table="ta_setoran",
        op=Op.UPDATE,
        key=(601,),
        row={"id_setoran": 601, "kd_pajak": "99", "pokok": b"\x01"},
        position="mariadb-bin.000001:1234:0",
    )
    dead = DeadRow(
        change=change,
        source="simda",
        opd="bapenda",
        event_type="bapenda.pajak_dibayar.v1",
        event_id="e-1",
        message="jenis_pajak: no mapping for value '99'",
        field="jenis_pajak",
    )
    key, value, headers = dead_row_record(dead)
    names = dict(headers)
    assert key == b"601"
    assert orjson.loads(value)["kd_pajak"] == "99"
    assert names["ce_id"] == b"e-1"
    assert names["lintas.dlq.reason"] == b"unmappable_row"
    assert names["lintas.dlq.field"] == b"jenis_pajak"
    assert names["lintas.dlq.source"] == b"capture/simda/ta_setoran"
    assert names["lintas.dlq.op"] == b"update"
    assert "lintas.dlq.topic" not in names  # not replayable as an Avro event


def test_composite_keys_are_json() -> None:
    change = Change(table="t", op=Op.INSERT, key=(2025, "01"), row={}, position="p")
    dead = DeadRow(change=change, source="s", opd="o", event_type=None, event_id="e", message="m")
    assert dead_row_record(dead)[0] == b'[2025,"01"]'


def test_the_outbox_table_is_documented_for_both_dialects() -> None:
    assert "jsonb NOT NULL" in outbox_ddl("postgresql")
    assert "AUTO_INCREMENT" in outbox_ddl("mariadb", "app_outbox")
    assert "app_outbox_unsent" in outbox_ddl("mariadb", "app_outbox")


def test_every_public_name_exists() -> None:
    module = importlib.import_module("lintas.producers.capture")
    assert sorted(set(capture.__all__)) == sorted(capture.__all__)
    for name in capture.__all__:
        assert getattr(module, name) is not None, name

"""pgoutput messages, built byte by byte as PostgreSQL sends them, and decoded."""

from __future__ import annotations

import datetime as dt
import decimal
import struct

from lintas.producers.capture.pgoutput import (
    UNCHANGED_TOAST,
    Begin,
    Commit,
    Relation,
    RowChange,
    Truncate,
    decode_message,
    format_lsn,
    parse_lsn,
)


def _s(text: str) -> bytes:
    return text.encode() + b"\0"


def _tuple(*values: str | None) -> bytes:
    out = struct.pack("!h", len(values))
    for value in values:
        if value is None:
            out += b"n"
        elif value == "<toast>":
            out += b"u"
        else:
            raw = value.encode()
            out += b"t" + struct.pack("!i", len(raw)) + raw
    return out


RELATION = (
    b"R"
    + struct.pack("!I", 16384)
    + _s("public")
    + _s("ta_setoran")
    + b"d"
    + struct.pack("!h", 4)
    + b"\x01"
    + _s("id_setoran")
    + struct.pack("!Ii", 23, -1)
    + b"\x00"
    + _s("Pokok")
    + struct.pack("!Ii", 1700, -1)
    + b"\x00"
    + _s("tgl_setor")
    + struct.pack("!Ii", 1114, -1)
    + b"\x00"
    + _s("catatan")
    + struct.pack("!Ii", 25, -1)
)


def test_lsn_text() -> None:
    assert parse_lsn("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert format_lsn(parse_lsn("0/16B3748")) == "0/16B3748"


def test_a_transaction_decodes_with_typed_values() -> None:
    relations: dict[int, Relation] = {}
    begin = decode_message(b"B" + struct.pack("!qqI", 100, 1_000_000, 742), relations)
    assert begin == Begin(100, dt.datetime(2000, 1, 1, 0, 0, 1, tzinfo=dt.UTC), 742)
    relation = decode_message(RELATION, relations)
    assert isinstance(relation, Relation) and relation.columns[1] == "pokok"
    assert relation.key_columns == ("id_setoran",)
    insert = decode_message(
        b"I"
        + struct.pack("!I", 16384)
        + b"N"
        + _tuple("7", "1875000.00", "2025-08-15 10:12:00", None),
        relations,
    )
    assert isinstance(insert, RowChange) and insert.kind == "insert"
    assert insert.new == {
        "id_setoran": 7,
        "pokok": decimal.Decimal("1875000.00"),
        "tgl_setor": dt.datetime(2025, 8, 15, 10, 12),
        "catatan": None,
    }
    update = decode_message(
        b"U"
        + struct.pack("!I", 16384)
        + b"O"
        + _tuple("7", "1", "2025-08-15 10:12:00", "x")
        + b"N"
        + _tuple("7", "2", "2025-08-15 10:12:00", "<toast>"),
        relations,
    )
    assert isinstance(update, RowChange) and update.old is not None and update.new is not None
    assert update.old["pokok"] == 1 and update.new["catatan"] is UNCHANGED_TOAST
    delete = decode_message(
        b"D" + struct.pack("!I", 16384) + b"K" + _tuple("7", None, None, None), relations
    )
    assert isinstance(delete, RowChange) and delete.kind == "delete"
    assert delete.old is not None and delete.old["id_setoran"] == 7 and delete.new is None
    commit = decode_message(b"C" + struct.pack("!bqqq", 0, 100, 180, 1_000_000), relations)
    assert commit == Commit(100, 180, dt.datetime(2000, 1, 1, 0, 0, 1, tzinfo=dt.UTC))
    truncate = decode_message(b"T" + struct.pack("!ibI", 1, 0, 16384), relations)
    assert truncate == Truncate((16384,))
    assert decode_message(b"Y" + struct.pack("!I", 1) + _s("public") + _s("t"), relations) is None

"""Decoding PostgreSQL's ``pgoutput`` logical replication messages (protocol version 1).

What ``pg_logical_slot_peek_binary_changes(slot, ..., 'proto_version', '1',
'publication_names', ...)`` returns, one message per row: Begin, Relation, Insert, Update,
Delete, Truncate, Commit (and Type/Origin, which we skip). Column values arrive as text in
the types' output format and are converted here for the common types; anything else stays
text for the mapping's transforms.

Reference: "Logical Replication Message Formats" in the PostgreSQL documentation.
"""

from __future__ import annotations

import datetime as dt
import decimal
import struct
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Begin",
    "Commit",
    "Relation",
    "RowChange",
    "Truncate",
    "decode_message",
    "format_lsn",
    "parse_lsn",
]

PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
UNCHANGED_TOAST = object()
"""A value pgoutput did not send: an unchanged TOASTed column of an update."""


def parse_lsn(text: str) -> int:
    """``16/B374D848`` -> its 64-bit position."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(lsn: int) -> str:
    """A 64-bit position as PostgreSQL writes it (``16/B374D848``)."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def _timestamp(text: str) -> dt.datetime:
    # timestamptz output in a UTC session: "2025-06-10 03:05:00.123+00"
    if text.endswith(("+00", "-00")) or (len(text) > 3 and text[-3] in "+-"):
        text += ":00"
    return dt.datetime.fromisoformat(text)


def _bool(text: str) -> bool:
    return text == "t"


_CONVERTERS: dict[int, Callable[[str], Any]] = {
    16: _bool,  # bool
    20: int,  # int8
    21: int,  # int2
    23: int,  # int4
    26: int,  # oid
    700: float,  # float4
    701: float,  # float8
    1700: decimal.Decimal,  # numeric
    1082: dt.date.fromisoformat,  # date
    1114: dt.datetime.fromisoformat,  # timestamp (naive, as stored)
    1184: _timestamp,  # timestamptz
    2950: uuid.UUID,  # uuid
}


@dataclass(frozen=True, slots=True)
class Begin:
    final_lsn: int
    """LSN of the transaction's commit record."""
    commit_time: dt.datetime
    xid: int


@dataclass(frozen=True, slots=True)
class Commit:
    commit_lsn: int
    end_lsn: int
    """Where the next transaction starts: the position to confirm once this one is sent."""
    commit_time: dt.datetime


@dataclass(frozen=True, slots=True)
class Relation:
    oid: int
    namespace: str
    name: str
    replica_identity: str
    """``d`` default (primary key), ``f`` full, ``i`` index, ``n`` nothing."""
    columns: tuple[str, ...]
    type_oids: tuple[int, ...]
    key_columns: tuple[str, ...] = field(default=())

    @property
    def qualified(self) -> str:
        return f"{self.namespace}.{self.name}"


@dataclass(frozen=True, slots=True)
class RowChange:
    """An Insert, Update or Delete of one row.

    Attributes:
        kind: ``insert``, ``update`` or ``delete``.
        relation: the table.
        new: the row after an insert or update.
        old: the row before an update or delete: all columns with REPLICA IDENTITY FULL,
            the key columns otherwise (``None`` for an update that did not change the key).
    """

    kind: str
    relation: Relation
    new: Mapping[str, Any] | None
    old: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class Truncate:
    relations: tuple[int, ...]


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> str:
        value = self.data[self.pos : self.pos + 1].decode("ascii")
        self.pos += 1
        return value

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        size = struct.calcsize(fmt)
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values

    def int8(self) -> int:
        return int(self.unpack("!b")[0])

    def int16(self) -> int:
        return int(self.unpack("!h")[0])

    def int32(self) -> int:
        return int(self.unpack("!i")[0])

    def uint32(self) -> int:
        return int(self.unpack("!I")[0])

    def int64(self) -> int:
        return int(self.unpack("!q")[0])

    def string(self) -> str:
        end = self.data.index(b"\x00", self.pos)
        value = self.data[self.pos : end].decode("utf-8")
        self.pos = end + 1
        return value

    def timestamp(self) -> dt.datetime:
        return PG_EPOCH + dt.timedelta(microseconds=self.int64())


def _tuple(reader: _Reader, relation: Relation) -> dict[str, Any]:
    count = reader.int16()
    row: dict[str, Any] = {}
    for i in range(count):
        kind = reader.byte()
        name = relation.columns[i]
        if kind == "n":
            row[name] = None
        elif kind == "u":
            row[name] = UNCHANGED_TOAST
        elif kind in ("t", "b"):
            length = reader.int32()
            raw = reader.data[reader.pos : reader.pos + length]
            reader.pos += length
            text = raw.decode("utf-8")
            convert = _CONVERTERS.get(relation.type_oids[i])
            row[name] = convert(text) if convert else text
        else:
            raise ValueError(f"unknown tuple data kind {kind!r}")
    return row


def decode_message(
    data: bytes, relations: dict[int, Relation]
) -> Begin | Commit | Relation | RowChange | Truncate | None:
    """One pgoutput message; Relation messages are remembered in ``relations``.

    Returns None for messages capture does not use (Type, Origin, logical messages).

    Raises:
        ValueError: a message this decoder does not understand.
        KeyError: a row of a relation that was never described (cannot happen within one
            decoding call: pgoutput describes each relation before its first row).
    """
    reader = _Reader(data)
    tag = reader.byte()
    if tag == "B":
        final_lsn = reader.int64()
        when = reader.timestamp()
        return Begin(final_lsn, when, reader.uint32())
    if tag == "C":
        reader.int8()  # flags, unused
        commit_lsn = reader.int64()
        end_lsn = reader.int64()
        return Commit(commit_lsn, end_lsn, reader.timestamp())
    if tag == "R":
        oid = reader.uint32()
        namespace = reader.string()
        name = reader.string()
        identity = chr(reader.int8())
        columns: list[str] = []
        types: list[int] = []
        keys: list[str] = []
        for _ in range(reader.int16()):
            flags = reader.int8()
            column = reader.string().lower()
            columns.append(column)
            types.append(reader.uint32())
            reader.int32()  # type modifier
            if flags & 1:
                keys.append(column)
        relation = Relation(
            oid, namespace, name, identity, tuple(columns), tuple(types), tuple(keys)
        )
        relations[oid] = relation
        return relation
    if tag in ("I", "U", "D"):
        relation = relations[reader.uint32()]
        old: dict[str, Any] | None = None
        new: dict[str, Any] | None = None
        marker = reader.byte()
        if marker in ("K", "O"):
            old = _tuple(reader, relation)
            if tag == "U":
                marker = reader.byte()
        if marker == "N":
            new = _tuple(reader, relation)
        kind = {"I": "insert", "U": "update", "D": "delete"}[tag]
        return RowChange(kind, relation, new, old)
    if tag == "T":
        count = reader.int32()
        reader.int8()  # options (CASCADE, RESTART IDENTITY)
        return Truncate(tuple(reader.uint32() for _ in range(count)))
    if tag in ("Y", "O", "M"):
        return None
    raise ValueError(f"unknown pgoutput message {tag!r}")

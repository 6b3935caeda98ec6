"""From a decoded canonical record to the rows of the raw table and of its typed table.

This is the one place that knows the canonical record's field names (the schema the stream
workers generate, :func:`lintas.streams.canonical_schema`)::

    event_id, event_type, opd, application, subject, event_time, ingest_time,
    wilayah: null | {kode, provinsi, kabupaten_kota, kecamatan, desa_kelurahan},
    payload

The region codes of every level are cut from ``wilayah.kode`` (``32.73.01.1001`` is in
province ``32``, regency/city ``32.73``, district ``32.73.01``); the names come with it.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import orjson

from .ddl import TableShape, ValueKind
from .exceptions import CanonicalRecordInvalid

__all__ = [
    "PAYLOAD_FIELD",
    "RAW_COLUMNS",
    "json_bytes",
    "nik_values",
    "raw_row",
    "typed_columns",
    "typed_row",
]

PAYLOAD_FIELD = "payload"

RAW_COLUMNS: tuple[str, ...] = (
    "event_id",
    "event_type",
    "opd",
    "application",
    "subject",
    "event_time",
    "ingest_time",
    "kode_wilayah",
    "kode_provinsi",
    "nama_provinsi",
    "kode_kabupaten_kota",
    "nama_kabupaten_kota",
    "kode_kecamatan",
    "nama_kecamatan",
    "kode_desa_kelurahan",
    "nama_desa_kelurahan",
    "niks",
    "payload",
    "schema_id",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
)
"""The raw table's columns in the order :func:`raw_row` returns them (``stored_at`` is set
by the database)."""

_NO_REGION: tuple[None, ...] = (None,) * 9


def _json_default(value: Any) -> Any:
    # A Decimal as a JSON number written exactly (jsonb keeps numeric's scale: 750000.00);
    # bytes as base64, the usual JSON spelling of binary.
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_bytes(value: Any) -> bytes:
    """``value`` as JSON text: dates ISO 8601, times UTC with ``Z``, UUIDs as strings."""
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_UTC_Z)


def _region(wilayah: Any) -> tuple[str | None, ...]:
    if not isinstance(wilayah, Mapping):
        return _NO_REGION
    kode = wilayah.get("kode")
    if not isinstance(kode, str) or not kode:
        return _NO_REGION
    parts = kode.split(".")

    def code(level: int) -> str | None:
        return ".".join(parts[:level]) if len(parts) >= level else None

    return (
        kode,
        code(1),
        wilayah.get("provinsi"),
        code(2),
        wilayah.get("kabupaten_kota"),
        code(3),
        wilayah.get("kecamatan"),
        code(4),
        wilayah.get("desa_kelurahan"),
    )


def nik_values(payload: Mapping[str, Any], paths: Sequence[str]) -> list[str]:
    """The distinct NIKs at ``paths`` (``nik``, ``anggota[].nik``) of a payload, in order."""
    found: list[str] = []
    for path in paths:
        for value in _values_at(payload, path.split(".")):
            if isinstance(value, str) and value and value not in found:
                found.append(value)
    return found


def _values_at(value: Any, parts: list[str]) -> list[Any]:
    if not parts:
        return [value]
    head, rest = parts[0], parts[1:]
    if not isinstance(value, Mapping):
        return []
    if head.endswith("[]"):
        items = value.get(head[:-2])
        if not isinstance(items, list):
            return []
        return [v for item in items for v in _values_at(item, rest)]
    return _values_at(value.get(head), rest)


def _text(record: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = record.get(name)
    if value is None or value == "":
        if required:
            raise CanonicalRecordInvalid(name, "missing or empty")
        return None
    if not isinstance(value, str):
        raise CanonicalRecordInvalid(name, f"expected a string, found {type(value).__name__}")
    return value


def _time(record: Mapping[str, Any], name: str) -> dt.datetime | None:
    value = record.get(name)
    if value is None or isinstance(value, dt.datetime):
        return value
    raise CanonicalRecordInvalid(name, f"expected a timestamp, found {type(value).__name__}")


def raw_row(
    record: Mapping[str, Any],
    *,
    nik_paths: Sequence[str],
    schema_id: int,
    topic: str,
    partition: int,
    offset: int,
) -> tuple[Any, ...]:
    """The raw table's row of one canonical record, in :data:`RAW_COLUMNS` order.

    Args:
        record: the decoded canonical record.
        nik_paths: payload paths tagged ``"pii": "nik"``; their values fill ``niks``, which
            the citizen timeline is built from.
        schema_id: the registry id the record was written with.
        topic, partition, offset: where it was read.

    Raises:
        CanonicalRecordInvalid: no event id, type or OPD, a payload that is not a record,
            or an envelope value of the wrong type.
    """
    payload = record.get(PAYLOAD_FIELD)
    if not isinstance(payload, Mapping):
        raise CanonicalRecordInvalid(PAYLOAD_FIELD, "missing or not a record")
    return (
        _text(record, "event_id", required=True),
        _text(record, "event_type", required=True),
        _text(record, "opd", required=True),
        _text(record, "application"),
        _text(record, "subject"),
        _time(record, "event_time"),
        _time(record, "ingest_time"),
        *_region(record.get("wilayah")),
        nik_values(payload, nik_paths),
        json_bytes(payload),
        schema_id,
        topic,
        partition,
        offset,
    )


def typed_columns(shape: TableShape) -> tuple[str, ...]:
    """The typed table's columns :func:`typed_row` fills for ``shape``, in order."""
    return ("event_id", "event_time", "ingest_time", *(c.name for c in shape.columns))


def typed_row(raw: Sequence[Any], payload: Mapping[str, Any], shape: TableShape) -> tuple[Any, ...]:
    """The typed table's row of a record whose raw row is ``raw``.

    Args:
        raw: the record's :func:`raw_row` (its envelope values are reused).
        payload: the record's payload.
        shape: the typed table of the record's writer schema.
    """
    values: list[Any] = [raw[0], raw[5], raw[6]]
    for col in shape.columns:
        value = payload.get(col.name)
        if value is not None and col.kind is ValueKind.JSON:
            value = json_bytes(value)
        values.append(value)
    return tuple(values)

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
import functools
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


@functools.lru_cache(maxsize=16_384)
def _levels(kode: str) -> tuple[str | None, str | None, str | None, str | None]:
    """The codes of the province, regency/city, district and village a code lies in."""
    parts = kode.split(".")

    def level(n: int) -> str | None:
        return ".".join(parts[:n]) if len(parts) >= n else None

    return level(1), level(2), level(3), level(4)


def _region(wilayah: Any) -> tuple[str | None, ...]:
    if not isinstance(wilayah, dict):
        return _NO_REGION
    kode = wilayah.get("kode")
    if not isinstance(kode, str) or not kode:
        return _NO_REGION
    provinsi, kabupaten_kota, kecamatan, desa_kelurahan = _levels(kode)
    return (
        kode,
        provinsi,
        wilayah.get("provinsi"),
        kabupaten_kota,
        wilayah.get("kabupaten_kota"),
        kecamatan,
        wilayah.get("kecamatan"),
        desa_kelurahan,
        wilayah.get("desa_kelurahan"),
    )


def nik_values(payload: Mapping[str, Any], paths: Sequence[str]) -> list[str]:
    """The distinct NIKs at ``paths`` (``nik``, ``anggota[].nik``) of a payload, in order."""
    found: list[str] = []
    for path in paths:
        for value in _values_at(payload, _steps(path), 0):
            if isinstance(value, str) and value and value not in found:
                found.append(value)
    return found


@functools.lru_cache(maxsize=1024)
def _steps(path: str) -> tuple[tuple[str, bool], ...]:
    """``anggota[].nik`` -> ``(("anggota", True), ("nik", False))``: (field, is an array)."""
    return tuple((p[:-2], True) if p.endswith("[]") else (p, False) for p in path.split("."))


def _values_at(value: Any, steps: tuple[tuple[str, bool], ...], i: int) -> list[Any]:
    # Decoded Avro records are dicts: checking for dict, not Mapping, keeps the ABC
    # machinery off a path taken for every record.
    if i == len(steps):
        return [value]
    if not isinstance(value, dict):
        return []
    name, is_array = steps[i]
    if not is_array:
        return _values_at(value.get(name), steps, i + 1)
    items = value.get(name)
    if not isinstance(items, list):
        return []
    return [v for item in items for v in _values_at(item, steps, i + 1)]


def _text(record: Mapping[str, Any], name: str) -> str | None:
    value = record.get(name)
    if value is None or value == "":
        return None
    if type(value) is not str:
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
    event_id, event_type, opd = record.get("event_id"), record.get("event_type"), record.get("opd")
    # One cheap test on the path every record takes; _invalid says what is wrong.
    if not (
        isinstance(payload, dict)
        and type(event_id) is str
        and event_id
        and type(event_type) is str
        and event_type
        and type(opd) is str
        and opd
    ):
        raise _invalid(record)
    return (
        event_id,
        event_type,
        opd,
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


def _invalid(record: Mapping[str, Any]) -> CanonicalRecordInvalid:
    if not isinstance(record.get(PAYLOAD_FIELD), dict):
        return CanonicalRecordInvalid(PAYLOAD_FIELD, "missing or not a record")
    for name in ("event_id", "event_type", "opd"):
        value = record.get(name)
        if value is None or value == "":
            return CanonicalRecordInvalid(name, "missing or empty")
        if type(value) is not str:
            return CanonicalRecordInvalid(name, f"expected a string, found {type(value).__name__}")
    raise AssertionError("the record is valid")  # pragma: no cover - callers check first


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

"""From canonical records (as the stream workers write them) to raw and typed rows."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import orjson
import pytest

from lintas.consumers.sinks.testing import canonical_event, varied_payload
from lintas.consumers.store import (
    RAW_COLUMNS,
    CanonicalRecordInvalid,
    catalog_shape,
    nik_values,
    raw_row,
    typed_row,
)
from lintas.schemas import decode, encode, example_event, load_catalog, parse_schema
from lintas.streams import canonical_schema

CATALOG = load_catalog()


def _decoded(event_type_id: str, **overrides: object) -> dict[str, object]:
    """A canonical record through the wire format and back, as the sink sees it."""
    event_type = CATALOG.get(event_type_id)
    record = canonical_event(event_type, example_event(event_type))
    record.update(overrides)
    parsed = parse_schema(canonical_schema(event_type))
    return decode(encode(1, parsed, record), parsed)


def _raw(record: dict[str, object], nik_paths: tuple[str, ...] = ("nik",)) -> dict[str, object]:
    row = raw_row(record, nik_paths=nik_paths, schema_id=7, topic="t", partition=2, offset=41)
    return dict(zip(RAW_COLUMNS, row, strict=True))


def test_the_raw_row_carries_the_envelope_region_and_kafka_coordinates() -> None:
    record = _decoded("dinsos.bansos_disalurkan.v1")
    raw = _raw(record)
    assert raw["event_id"] == record["event_id"]
    assert (raw["event_type"], raw["opd"], raw["application"]) == (
        "dinsos.bansos_disalurkan.v1",
        "dinsos",
        "testapp",
    )
    assert raw["subject"] == record["payload"]["nik"]  # type: ignore[index]
    assert raw["kode_wilayah"] == "32.73.01.1001"
    assert (raw["kode_provinsi"], raw["kode_kabupaten_kota"], raw["kode_kecamatan"]) == (
        "32",
        "32.73",
        "32.73.01",
    )
    assert (raw["nama_kabupaten_kota"], raw["nama_kecamatan"]) == ("Kota Bandung", "Sukasari")
    assert raw["nama_desa_kelurahan"] == "Sukarasa"
    assert (raw["schema_id"], raw["kafka_topic"], raw["kafka_partition"], raw["kafka_offset"]) == (
        7,
        "t",
        2,
        41,
    )
    payload = orjson.loads(raw["payload"])  # type: ignore[arg-type]
    assert payload["nilai"] == 750000.0 and b'"nilai":750000.00' in raw["payload"]  # type: ignore[operator]
    assert payload["disalurkan_pada"] == "2025-05-05T01:00:00Z"


def test_region_levels_stop_where_the_code_stops() -> None:
    record = _decoded("dinsos.bansos_disalurkan.v1")
    record["wilayah"] = {
        "kode": "32.73",
        "provinsi": "Jawa Barat",
        "kabupaten_kota": "Kota Bandung",
    }
    raw = _raw(record)
    assert (raw["kode_kabupaten_kota"], raw["kode_kecamatan"], raw["nama_kecamatan"]) == (
        "32.73",
        None,
        None,
    )
    record["wilayah"] = None
    assert _raw(record)["kode_wilayah"] is None


def test_niks_come_from_every_field_tagged_nik_nested_ones_too() -> None:
    kk = CATALOG.get("dukcapil.kk_diperbarui.v1")
    payload = example_event(kk)
    paths = tuple(p for p, kind in catalog_shape(kk).pii_paths.items() if kind == "nik")
    found = nik_values(payload, paths)
    members = [m["nik"] for m in payload["anggota"]]
    assert set(found) == {payload["nik"], *members}
    assert len(found) == len(set(found))  # the head of the family is also a member: once


def test_the_typed_row_follows_the_shape() -> None:
    record = _decoded("dukcapil.kk_diperbarui.v1")
    shape = catalog_shape(CATALOG.get("dukcapil.kk_diperbarui.v1"))
    raw = raw_row(record, nik_paths=(), schema_id=1, topic="t", partition=0, offset=0)
    row = typed_row(raw, record["payload"], shape)  # type: ignore[arg-type]
    assert row[:3] == (record["event_id"], record["event_time"], record["ingest_time"])
    values = dict(zip((c.name for c in shape.columns), row[3:], strict=True))
    assert isinstance(values["anggota"], bytes)  # jsonb, encoded once
    assert orjson.loads(values["anggota"])[0]["tanggal_lahir"] == "1991-11-08"
    assert values["tanggal_terbit"] == dt.date(2025, 6, 10)
    bansos = _decoded("dinsos.bansos_disalurkan.v1")
    shape = catalog_shape(CATALOG.get("dinsos.bansos_disalurkan.v1"))
    raw = raw_row(bansos, nik_paths=(), schema_id=1, topic="t", partition=0, offset=0)
    values = dict(
        zip(
            (c.name for c in shape.columns),
            typed_row(raw, bansos["payload"], shape)[3:],
            strict=True,
        )
    )  # type: ignore[arg-type]
    assert values["nilai"] == Decimal("750000.00") and isinstance(
        values["id_penyaluran"], uuid.UUID
    )


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("event_id", "", "missing or empty"),
        ("opd", None, "missing or empty"),
        ("event_time", "yesterday", "expected a timestamp, found str"),
        ("payload", None, "missing or not a record"),
    ],
)
def test_a_record_without_what_the_raw_table_needs_is_invalid(
    field: str, value: object, reason: str
) -> None:
    record = _decoded("dinsos.bansos_disalurkan.v1")
    record[field] = value
    with pytest.raises(CanonicalRecordInvalid) as caught:
        raw_row(record, nik_paths=(), schema_id=1, topic="t", partition=0, offset=0)
    assert (caught.value.field, caught.value.reason) == (field, reason)


def test_the_envelope_names_the_raw_table_reads_exist_in_the_canonical_schema() -> None:
    # rows.py is the one place that knows the canonical field names; the workers' schema
    # is the other side of that contract.
    names = {
        f["name"] for f in canonical_schema(CATALOG.get("dinsos.bansos_disalurkan.v1"))["fields"]
    }
    assert {
        "event_id",
        "event_type",
        "opd",
        "application",
        "subject",
        "event_time",
        "ingest_time",
        "wilayah",
        "payload",
    } <= names


def test_varied_payloads_have_distinct_valid_subjects() -> None:
    import lokal

    bansos = CATALOG.get("dinsos.bansos_disalurkan.v1")
    niks = [varied_payload(bansos, n)["nik"] for n in range(0, 40_000, 97)]
    assert len(set(niks)) == len(niks)
    assert all(lokal.parse_nik(n, reference_date=dt.date(2026, 1, 1)).valid for n in niks[:50])

"""The canonical envelope: a valid Avro schema per event type, enriched, round-tripping."""

from __future__ import annotations

import copy
import datetime as dt

import orjson
import pytest

from lintas.schemas import decode, encode, example_event, load_catalog, parse_schema
from lintas.schemas.compatibility import CompatibilityMode, check_compatibility
from lintas.streams.canonical import Origin, canonical_record, canonical_schema, region_names
from lintas.streams.envelope import read_envelope

CATALOG = load_catalog()


def _envelope(event_type, **extra: bytes):
    headers = {
        "ce_specversion": b"1.0",
        "ce_id": b"e-1",
        "ce_type": event_type.id.encode(),
        "ce_source": f"/opd/{event_type.opd}/app-1".encode(),
        **extra,
    }
    return read_envelope(list(headers.items()))


@pytest.mark.parametrize("event_type", list(CATALOG), ids=lambda t: t.id)
def test_canonical_records_round_trip_with_the_generated_schema(event_type) -> None:
    schema = canonical_schema(event_type)
    assert schema["namespace"] == f"id.lintas.canonical.{event_type.opd}"
    assert all(f.get("doc") for f in schema["fields"]), "every field has a doc"
    parsed = parse_schema(schema)
    payload = example_event(event_type)
    now = dt.datetime(2025, 6, 10, 3, 5, 7, 123000, tzinfo=dt.UTC)
    record = canonical_record(
        event_type,
        _envelope(event_type),
        payload,
        origin=Origin(topic="opd.x", partition=1, offset=9, timestamp_ms=1_749_524_700_000),
        key=b"subject-key",
        ingest_time=now,
    )
    back = decode(encode(3, parsed, record), parsed)
    assert back["payload"] == payload
    assert back["event_id"] == "e-1" and back["event_type"] == event_type.id
    assert back["application"] == "app-1" and back["subject"] == "subject-key"
    # No ce_time: the event time is the Kafka timestamp of the published record.
    assert back["event_time"] == dt.datetime(2025, 6, 10, 3, 5, tzinfo=dt.UTC)
    assert back["ingest_time"] == now
    assert (back["source_topic"], back["source_partition"], back["source_offset"]) == (
        "opd.x",
        1,
        9,
    )


def test_region_names_come_from_the_kemendagri_reference() -> None:
    assert region_names("32.73.01.1001") == {
        "kode": "32.73.01.1001",
        "provinsi": "Jawa Barat",
        "kabupaten_kota": "Kota Bandung",
        "kecamatan": "Sukasari",
        "desa_kelurahan": "Sukarasa",
    }
    assert region_names("33.74")["kabupaten_kota"] == "Kota Semarang"
    assert region_names("33.74")["kecamatan"] is None


def test_ce_time_and_subject_win_over_kafka_fields_and_the_subject_keeps_its_pii_tag() -> None:
    kematian = CATALOG.get("dukcapil.kematian_dicatat.v1")
    subject = next(f for f in canonical_schema(kematian)["fields"] if f["name"] == "subject")
    assert subject["pii"] == "nik"
    envelope = _envelope(kematian, ce_time=b"2025-06-07T01:02:03Z", ce_subject=b"3273")
    record = canonical_record(
        kematian,
        envelope,
        example_event(kematian),
        origin=Origin(topic="t", partition=0, offset=0, timestamp_ms=None),
        key=b"other",
        ingest_time=dt.datetime.now(dt.UTC),
    )
    assert record["event_time"] == dt.datetime(2025, 6, 7, 1, 2, 3, tzinfo=dt.UTC)
    assert record["subject"] == "3273"


def test_a_compatible_change_of_the_event_type_is_a_compatible_canonical_change() -> None:
    kematian = CATALOG.get("dukcapil.kematian_dicatat.v1")
    old = canonical_schema(kematian)
    newer = copy.deepcopy(kematian.schema)
    newer["fields"].append(
        {"name": "catatan", "type": ["null", "string"], "default": None, "doc": "A note."}
    )
    new = copy.deepcopy(old)
    new["fields"][-1]["type"] = newer
    result = check_compatibility(
        orjson.dumps(new).decode(), [orjson.dumps(old).decode()], CompatibilityMode.BACKWARD
    )
    assert result.is_compatible, result

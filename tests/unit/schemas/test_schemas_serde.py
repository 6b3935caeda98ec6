"""The Confluent wire format: round trips, schema resolution and every error path."""

from __future__ import annotations

import contextlib
import io
import struct
from decimal import Decimal

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lintas.schemas import (
    AvroDeserializer,
    AvroSerializer,
    DeserializationError,
    EventType,
    SchemaNotFound,
    SchemaResolver,
    SerializationError,
    UnknownSchemaId,
    decode,
    encode,
    example_event,
    from_avro_dict,
    load_catalog,
    model_for,
    parse_header,
    parse_schema,
    to_avro_dict,
)
from lintas.schemas.testing import InMemorySchemaResolver

EVENT_TYPES = list(load_catalog())
KEMATIAN = load_catalog().get("dukcapil.kematian_dicatat.v1")


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.id)
def test_example_round_trips_model_to_wire_and_back(event_type: EventType) -> None:
    model = model_for(event_type).model_validate(example_event(event_type))
    data = encode(42, event_type.parsed_schema, to_avro_dict(model))
    assert data[0] == 0 and struct.unpack(">I", data[1:5]) == (42,)
    assert parse_header(data) == 42
    assert from_avro_dict(event_type, decode(data, event_type.parsed_schema)) == model


def test_wire_format_matches_plain_fastavro() -> None:
    # Any Confluent client must read us: header + fastavro schemaless body, nothing else.
    record = example_event(KEMATIAN)
    data = encode(7, KEMATIAN.parsed_schema, record)
    body = io.BytesIO()
    fastavro.schemaless_writer(body, KEMATIAN.parsed_schema, record)
    assert data == b"\x00\x00\x00\x00\x07" + body.getvalue()


def test_decode_with_a_newer_reader_schema_fills_defaults() -> None:
    writer = KEMATIAN.schema
    reader = {
        **writer,
        "fields": [
            *writer["fields"],
            {"name": "catatan", "type": ["null", "string"], "default": None, "doc": "Note."},
        ],
    }
    data = encode(1, KEMATIAN.parsed_schema, example_event(KEMATIAN))
    record = decode(data, KEMATIAN.parsed_schema, parse_schema(reader))
    assert record["catatan"] is None and record["nik"] == example_event(KEMATIAN)["nik"]


def test_decode_with_an_incompatible_reader_schema_fails_cleanly() -> None:
    reader = {**KEMATIAN.schema, "fields": [{"name": "wajib", "type": "int", "doc": "x"}]}
    data = encode(1, KEMATIAN.parsed_schema, example_event(KEMATIAN))
    with pytest.raises(DeserializationError):
        decode(data, KEMATIAN.parsed_schema, parse_schema(reader))


@pytest.mark.parametrize(
    ("mutate", "field", "expected"),
    [
        (lambda r: r.update(nik=3273012108480001), "nik", "string"),
        (lambda r: r.update(tanggal_kematian="7 Juni 2025"), "tanggal_kematian", "int/date"),
        (lambda r: r.update(sebab_kematian="DIBUNUH_NAGA"), "sebab_kematian", None),
        (lambda r: r.pop("nama"), "nama", None),
    ],
)
def test_serialization_error_names_the_field(mutate, field: str, expected: str | None) -> None:
    record = example_event(KEMATIAN)
    mutate(record)
    with pytest.raises(SerializationError) as info:
        encode(1, KEMATIAN.parsed_schema, record)
    error = info.value
    assert error.field == field
    assert field in str(error)
    if expected is not None:
        assert error.expected == expected
        assert error.actual == type(record[field]).__name__
    assert error.__cause__ is not None  # the fastavro error stays chained


def test_serialization_error_in_nested_arrays_and_decimals() -> None:
    kk = load_catalog().get("dukcapil.kk_diperbarui.v1")
    record = example_event(kk)
    record["anggota"][2]["tanggal_lahir"] = "2 Juni 2025"
    with pytest.raises(SerializationError) as info:
        encode(1, kk.parsed_schema, record)
    assert info.value.field == "anggota[2].tanggal_lahir"

    pajak = load_catalog().get("bapenda.pajak_dibayar.v1")
    record = example_event(pajak)
    record["denda"] = Decimal("10.005")
    with pytest.raises(SerializationError, match="more than 2 decimal places") as info:
        encode(1, pajak.parsed_schema, record)
    assert info.value.field == "denda"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "too short"),
        (b"\x00\x00\x00", "too short"),
        (b"\x01\x00\x00\x00\x01abc", "magic byte 1"),
        (b'{"nik": "1"}', "magic byte 123"),
    ],
)
def test_bad_frames_are_rejected(data: bytes, reason: str) -> None:
    with pytest.raises(DeserializationError, match=reason) as info:
        decode(
            data,
            KEMATIAN.parsed_schema,
            topic="opd.dukcapil.kematian_dicatat.v1",
            partition=3,
            offset=1207,
        )
    error = info.value
    assert (error.topic, error.partition, error.offset) == (
        "opd.dukcapil.kematian_dicatat.v1",
        3,
        1207,
    )
    assert "partition 3, offset 1207" in str(error)


def test_truncated_and_padded_bodies_are_rejected() -> None:
    data = encode(9, KEMATIAN.parsed_schema, example_event(KEMATIAN))
    for cut in (6, len(data) // 2, len(data) - 1):
        with pytest.raises(DeserializationError) as info:
            decode(data[:cut], KEMATIAN.parsed_schema)
        assert info.value.schema_id == 9
    with pytest.raises(DeserializationError, match="left over"):
        decode(data + b"\x00", KEMATIAN.parsed_schema)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=200))
def test_garbage_never_leaks_a_fastavro_error(body: bytes) -> None:
    with contextlib.suppress(DeserializationError):
        decode(b"\x00\x00\x00\x00\x01" + body, KEMATIAN.parsed_schema)


def test_in_memory_resolver_is_a_schema_resolver() -> None:
    assert isinstance(InMemorySchemaResolver(), SchemaResolver)


async def test_serializer_and_deserializer_through_a_resolver() -> None:
    resolver = InMemorySchemaResolver(first_id=100)
    serializer = AvroSerializer(resolver)
    with pytest.raises(SchemaNotFound):
        await serializer.serialize(KEMATIAN, example_event(KEMATIAN))

    schema_id = await resolver.register(KEMATIAN.subject, KEMATIAN.schema_str)
    first = await serializer.serialize(KEMATIAN, example_event(KEMATIAN))
    second = await serializer.serialize(KEMATIAN, example_event(KEMATIAN))
    assert parse_header(first) == schema_id == 100 and first == second
    assert resolver.calls.count(("lookup", KEMATIAN.subject)) == 2  # one failed, one cached

    deserializer = AvroDeserializer(resolver, reader=KEMATIAN)
    for _ in range(3):
        assert await deserializer.deserialize(first) == example_event(KEMATIAN)
    assert resolver.calls.count(("get_schema", 100)) == 1


async def test_auto_register_and_subject_override() -> None:
    resolver = InMemorySchemaResolver()
    serializer = AvroSerializer(resolver, auto_register=True)
    subject = f"{KEMATIAN.canonical_topic}-value"
    data = await serializer.serialize(KEMATIAN, example_event(KEMATIAN), subject=subject)
    assert ("register", subject) in resolver.calls
    assert await serializer.schema_id(KEMATIAN, subject=subject) == parse_header(data)


async def test_deserializer_reports_unknown_ids_and_bad_registry_schemas() -> None:
    resolver = InMemorySchemaResolver()
    deserializer = AvroDeserializer(resolver)
    data = encode(77, KEMATIAN.parsed_schema, example_event(KEMATIAN))
    with pytest.raises(UnknownSchemaId) as info:
        await deserializer.deserialize(data, topic="t", partition=0, offset=5)
    assert info.value.schema_id == 77 and info.value.offset == 5
    assert isinstance(info.value, DeserializationError)

    class BrokenRegistry(InMemorySchemaResolver):
        async def get_schema(self, schema_id: int) -> str:
            return '{"type": "recrod", "name": "X"}'

    with pytest.raises(DeserializationError, match="not valid Avro"):
        await AvroDeserializer(BrokenRegistry()).deserialize(data)

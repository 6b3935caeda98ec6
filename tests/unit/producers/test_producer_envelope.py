"""Validation, Avro encoding and the CloudEvents envelope, read back with the peer libraries."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from hypothesis import given
from hypothesis import strategies as st

from lintas.producers import Event, ValidationFailed
from lintas.producers._encoder import Encoder, RememberingResolver, avro_dict, new_event_ids
from lintas.producers._envelope import check_name, format_time, source_of
from lintas.producers._kafka import murmur2
from lintas.producers._spool import Spool
from lintas.schemas import (
    AvroDeserializer,
    AvroSerializer,
    encode,
    example_event,
    load_catalog,
    model_for,
    to_avro_dict,
)
from lintas.schemas.testing import InMemorySchemaResolver

KEMATIAN = load_catalog().get("dukcapil.kematian_dicatat.v1")
EVENT_TYPES = list(load_catalog())


class AvroBody:
    """A cloudevents ``Format`` that hands the Avro body back untouched."""

    def read(self, event_factory: Any, data: str | bytes) -> Any:  # pragma: no cover
        raise NotImplementedError

    def write(self, event: Any) -> bytes:  # pragma: no cover
        raise NotImplementedError

    def write_data(self, data: Any, datacontenttype: str | None) -> bytes:  # pragma: no cover
        return bytes(data)

    def read_data(self, body: bytes, datacontenttype: str | None) -> bytes:
        return body

    def get_content_type(self) -> str:  # pragma: no cover
        return "application/avro"


@pytest.fixture
async def encoder(tmp_path: Path) -> Any:
    resolver = InMemorySchemaResolver()
    for event_type in EVENT_TYPES:
        await resolver.register(event_type.subject, event_type.schema_str)
    spool = await Spool.open(tmp_path, "enc", max_bytes=1 << 20)
    remembering = RememberingResolver(resolver, "mem", spool, {})
    yield Encoder(AvroSerializer(remembering), app="siak", opd="dukcapil"), resolver
    await spool.close()


def _kematian(**changes: Any) -> Any:
    return model_for(KEMATIAN).model_validate({**example_event(KEMATIAN), **changes})


async def test_headers_are_cloudevents_binary_mode_read_back_by_the_sdk(encoder: Any) -> None:
    enc, _ = encoder
    event = _kematian()
    (record,) = await enc.encode([event])
    names = [name for name, _ in record.headers]
    assert names == [
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
        "ce_subject",
        "content-type",
    ]
    ce = from_binary(KafkaMessage(dict(record.headers), record.key, record.value), AvroBody())
    assert ce.get_specversion() == "1.0"
    assert ce.get_id() == record.event_id
    assert uuid.UUID(ce.get_id()).version == 4
    assert ce.get_source() == "/opd/dukcapil/siak"
    assert ce.get_type() == "dukcapil.kematian_dicatat.v1"
    assert ce.get_subject() == event.nik
    assert ce.get_datacontenttype() == "application/avro"
    assert ce.get_extension("partitionkey") == event.nik
    when = ce.get_time()
    assert when is not None and when.utcoffset() == dt.timedelta(0)
    assert abs(dt.datetime.now(dt.UTC) - when) < dt.timedelta(minutes=5)
    assert dict(record.headers)["ce_time"].endswith(b"Z")
    assert ce.get_data() == record.value


async def test_key_is_the_subject_and_value_is_the_wire_format(encoder: Any) -> None:
    enc, resolver = encoder
    event = _kematian()
    (record,) = await enc.encode([event])
    assert record.topic == "opd.dukcapil.kematian_dicatat.v1"
    assert record.key == event.nik.encode()
    decoded = await AvroDeserializer(resolver).deserialize(record.value, topic=record.topic)
    assert decoded == to_avro_dict(event)


async def test_a_dict_is_validated_against_its_event_type(encoder: Any) -> None:
    enc, _ = encoder
    good = Event(data=example_event(KEMATIAN), event_type="dukcapil.kematian_dicatat.v1")
    (record,) = await enc.encode([good])
    assert record.key == example_event(KEMATIAN)["nik"].encode()

    bad = Event(data={**example_event(KEMATIAN), "nik": "12345"}, event_type=KEMATIAN)
    with pytest.raises(ValidationFailed) as caught:
        await enc.encode([good, bad])
    error = caught.value
    assert error.index == 1
    assert error.event_type == "dukcapil.kematian_dicatat.v1"
    assert [(e["field"], e["rule"], e["value"]) for e in error.errors] == [
        ("nik", "string_pattern_mismatch", "12345")
    ]
    assert "nik" in error.message and "string_pattern_mismatch" in error.message


async def test_every_problem_of_an_event_is_listed(encoder: Any) -> None:
    enc, _ = encoder
    data = {**example_event(KEMATIAN), "nik": "x", "jenis_kelamin": "X"}
    del data["nama"]
    with pytest.raises(ValidationFailed) as caught:
        await enc.encode([Event(data=data, event_type=KEMATIAN.id)])
    rules = {(e["field"], e["rule"]) for e in caught.value.errors}
    assert {("nik", "string_pattern_mismatch"), ("nama", "missing")} <= rules
    assert any(field == "jenis_kelamin" for field, _ in rules)


@pytest.mark.parametrize(
    ("event", "field", "rule"),
    [
        (Event(data={"nik": "1"}), "event_type", "missing"),
        (
            Event(data={"nik": "1"}, event_type="dukcapil.tidak_ada.v1"),
            "event_type",
            "unknown_event_type",
        ),
        (
            Event(data=_kematian(), event_type="dinkes.kunjungan_pasien.v1"),
            "event_type",
            "event_type_mismatch",
        ),
        (Event(data=_kematian(), id=""), "id", "cloudevents_id"),
        (Event(data=_kematian(), id="a\nb"), "id", "cloudevents_id"),
        (Event(data=_kematian(), time=dt.datetime(2025, 1, 1)), "time", "timezone_aware"),
        (Event(data=_kematian(), source="opd/x"), "source", "cloudevents_source"),
        (Event(data=_kematian(), headers={"ce_id": b"x"}), "headers", "envelope_header"),
        (Event(data=_kematian(), headers={"Content-Type": b"x"}), "headers", "envelope_header"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
async def test_bad_envelope_overrides_name_the_field_and_rule(
    encoder: Any, event: Event, field: str, rule: str
) -> None:
    enc, _ = encoder
    with pytest.raises(ValidationFailed) as caught:
        await enc.encode([_kematian(), event])
    assert caught.value.index == 1
    assert [(e["field"], e["rule"]) for e in caught.value.errors] == [(field, rule)]


async def test_anything_else_is_refused(encoder: Any) -> None:
    enc, _ = encoder
    with pytest.raises(ValidationFailed) as caught:
        await enc.encode([example_event(KEMATIAN)])  # a bare dict: the type is unknown
    assert caught.value.errors[0]["rule"] == "event_kind"


async def test_envelope_overrides_are_used(encoder: Any) -> None:
    enc, _ = encoder
    wita = dt.timezone(dt.timedelta(hours=8))
    event = Event(
        data=_kematian(),
        id="idem-123",
        time=dt.datetime(2025, 6, 10, 11, 5, 0, 123456, tzinfo=wita),
        subject="kematian/3273-KM-10062025-0007",
        source="/opd/dukcapil/siak-gateway",
        headers={"traceparent": b"00-abc-def-01"},
    )
    (record,) = await enc.encode([event])
    headers = dict(record.headers)
    assert record.event_id == "idem-123" and headers["ce_id"] == b"idem-123"
    assert headers["ce_time"] == b"2025-06-10T03:05:00.123Z"
    assert headers["ce_subject"] == b"kematian/3273-KM-10062025-0007"
    assert record.key == _kematian().nik.encode(), "the key stays the subject field"
    assert headers["ce_source"] == b"/opd/dukcapil/siak-gateway"
    assert headers["traceparent"] == b"00-abc-def-01"


async def test_without_an_opd_the_source_uses_the_event_types(tmp_path: Path) -> None:
    resolver = InMemorySchemaResolver()
    kunjungan = load_catalog().get("dinkes.kunjungan_pasien.v1")
    await resolver.register(kunjungan.subject, kunjungan.schema_str)
    enc = Encoder(AvroSerializer(resolver), app="portal", opd=None, topic_of=lambda t: "x.y")
    event = model_for(kunjungan).model_validate(example_event(kunjungan))
    (record,) = await enc.encode([event])
    assert dict(record.headers)["ce_source"] == b"/opd/dinkes/portal"
    assert record.topic == "x.y"


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.id)
def test_model_dump_encodes_to_the_same_bytes_as_to_avro_dict(event_type: Any) -> None:
    model = model_for(event_type).model_validate(example_event(event_type))
    parsed = event_type.parsed_schema
    assert encode(3, parsed, avro_dict(model)) == encode(3, parsed, to_avro_dict(model))


def test_event_ids_are_random_version_4_uuids() -> None:
    ids = new_event_ids(2000)
    assert len(set(ids)) == 2000
    for text in ids[:200]:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text
    assert new_event_ids(0) == []


@given(st.binary(max_size=64))
def test_murmur2_matches_aiokafka(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


def test_murmur2_matches_on_niks() -> None:
    for _ in range(500):
        nik = f"{int.from_bytes(os.urandom(7)) % 10**16:016d}".encode()
        assert murmur2(nik) == aiokafka_murmur2(nik)


def test_names_and_times() -> None:
    assert source_of("dukcapil", "siak-v2") == "/opd/dukcapil/siak-v2"
    for bad in ("", "Siak", "siak app", "-siak", "a/b", "x" * 64):
        with pytest.raises(ValueError, match="lowercase"):
            check_name("app name", bad)
    assert format_time(dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)) == (
        "2025-01-02T03:04:05.000Z"
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        format_time(dt.datetime(2025, 1, 2))

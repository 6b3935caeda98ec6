"""CloudEvents headers: what is required, what is checked, what a bad one is called."""

from __future__ import annotations

import datetime as dt

import pytest

from lintas.schemas import load_catalog
from lintas.streams.dlq import Reason
from lintas.streams.envelope import names_event_type, read_envelope
from lintas.streams.exceptions import RecordRejected

GOOD = [
    ("ce_specversion", b"1.0"),
    ("ce_id", b"9b2f0c6e-1"),
    ("ce_source", b"/opd/dukcapil/siak"),
    ("ce_type", b"dukcapil.kematian_dicatat.v1"),
    ("ce_time", b"2025-06-10T03:05:00.123Z"),
    ("ce_subject", b"3273012108480001"),
    ("content-type", b"application/avro"),
]


def _without(name: str) -> list[tuple[str, bytes]]:
    return [h for h in GOOD if h[0] != name]


def _with(name: str, value: bytes) -> list[tuple[str, bytes]]:
    return [(k, value if k == name else v) for k, v in GOOD]


def test_a_producer_sdk_envelope_reads_back() -> None:
    envelope = read_envelope(GOOD, opd="dukcapil")
    assert (envelope.id, envelope.opd, envelope.app) == ("9b2f0c6e-1", "dukcapil", "siak")
    assert envelope.time == dt.datetime(2025, 6, 10, 3, 5, 0, 123000, tzinfo=dt.UTC)
    assert envelope.subject == "3273012108480001"
    assert envelope.dedup_key == "/opd/dukcapil/siak 9b2f0c6e-1"


@pytest.mark.parametrize("name", ["ce_id", "ce_type", "ce_source", "ce_specversion"])
def test_missing_required_attributes_are_missing_envelope(name: str) -> None:
    with pytest.raises(RecordRejected) as info:
        read_envelope(_without(name))
    assert info.value.reason is Reason.MISSING_ENVELOPE
    assert info.value.field == name


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        (_with("ce_specversion", b"0.3"), "ce_specversion"),
        (_with("ce_source", b"dukcapil/siak"), "ce_source"),
        (_with("ce_source", b"/opd/dinsos/siks"), "ce_source"),
        (_with("ce_time", b"yesterday"), "ce_time"),
        (_with("ce_time", b"2025-06-10T03:05:00"), "ce_time"),
        (_with("ce_id", b"\xff\xfe"), "ce_id"),
        (_with("ce_id", b"x" * 300), "ce_id"),
    ],
)
def test_malformed_attributes_are_invalid_envelope(headers, field: str) -> None:
    with pytest.raises(RecordRejected) as info:
        read_envelope(headers, opd="dukcapil")
    assert info.value.reason is Reason.INVALID_ENVELOPE
    assert info.value.field == field


def test_ce_type_names_the_event_type_by_id_prefixed_id_or_record_name() -> None:
    kematian = load_catalog().get("dukcapil.kematian_dicatat.v1")
    assert names_event_type("dukcapil.kematian_dicatat.v1", kematian)
    assert names_event_type("id.go.bandung.dukcapil.kematian_dicatat.v1", kematian)
    assert names_event_type("id.lintas.dukcapil.KematianDicatat", kematian)
    assert not names_event_type("dukcapil.kematian_dicatat.v2", kematian)
    assert not names_event_type("xdukcapil.kematian_dicatat.v1", kematian)

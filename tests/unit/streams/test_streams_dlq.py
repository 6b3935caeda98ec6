"""Dead-letter headers: the original record untouched, the explanation parseable."""

from __future__ import annotations

import datetime as dt

from lintas.streams.dlq import (
    MAX_DEAD_LETTER_BYTES,
    Reason,
    dead_letter_headers,
    fit_dead_letter,
    original_headers,
    parse_dead_letter,
)

ORIGINAL = [("ce_id", b"e-1"), ("ce_type", b"dukcapil.kematian_dicatat.v1"), ("x", b"\x00\x01")]
NOW = dt.datetime(2025, 6, 10, 3, 5, tzinfo=dt.UTC)


def test_dead_letter_headers_follow_the_original_ones_and_parse_back() -> None:
    headers = dead_letter_headers(
        ORIGINAL,
        reason=Reason.INVALID_NIK,
        message="NIK 1 is not 16 digits",
        field="nik",
        topic="opd.dukcapil.kematian_dicatat.v1",
        partition=2,
        offset=41,
        now=NOW,
        event_type="dukcapil.kematian_dicatat.v1",
        opd="dukcapil",
    )
    assert headers[: len(ORIGINAL)] == ORIGINAL
    assert original_headers(headers) == ORIGINAL
    letter = parse_dead_letter(partition=0, offset=7, key=b"k", value=b"v", headers=headers)
    assert letter.reference == "0:7"
    assert (letter.reason, letter.field, letter.message) == (
        "invalid_nik",
        "nik",
        "NIK 1 is not 16 digits",
    )
    assert (letter.topic, letter.partition, letter.offset) == (
        "opd.dukcapil.kematian_dicatat.v1",
        2,
        41,
    )
    assert letter.time == NOW
    assert (letter.event_id, letter.opd) == ("e-1", "dukcapil")
    assert letter.headers == ORIGINAL and letter.value_dropped is None


def test_long_messages_are_cut_and_absent_fields_read_as_unknown() -> None:
    headers = dead_letter_headers(
        [],
        reason=Reason.WIRE_FORMAT,
        message="m" * 5000,
        field=None,
        topic="t",
        partition=0,
        offset=0,
        now=NOW,
    )
    letter = parse_dead_letter(partition=0, offset=0, key=None, value=None, headers=headers)
    assert len(letter.message) == 1000 and letter.message.endswith("...")
    assert letter.field is None and letter.event_id is None
    bare = parse_dead_letter(partition=1, offset=2, key=None, value=None, headers=[])
    assert (bare.reason, bare.partition, bare.offset) == ("unknown", -1, -1)


def test_a_value_too_big_for_the_broker_is_dropped_and_its_size_kept() -> None:
    value = b"v" * MAX_DEAD_LETTER_BYTES
    kept, headers = fit_dead_letter(b"k", value, [("a", b"b")])
    assert kept is None
    assert ("lintas.dlq.value_dropped", str(len(value)).encode()) in headers
    small, same = fit_dead_letter(b"k", b"small", [("a", b"b")])
    assert small == b"small" and same == [("a", b"b")]

"""Reading request bodies: plain JSON, NDJSON and CloudEvents structured mode (no I/O)."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest

from lintas.producers.gateway import MalformedRequest, UnsupportedContentType
from lintas.producers.gateway.formats import (
    CE_BATCH,
    CE_SINGLE,
    BodyKind,
    body_kind,
    parse_batch,
    parse_cloudevent_body,
    parse_single,
)

KEMATIAN = "dukcapil.kematian_dicatat.v1"


def _ce(**over: object) -> dict[str, object]:
    event: dict[str, object] = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "/opd/dukcapil/siak",
        "type": KEMATIAN,
        "time": "2025-06-10T03:05:00Z",
        "data": {"nik": "3273012108480001"},
    }
    event.update(over)
    return {k: v for k, v in event.items() if v is not None}


def test_single_json_body_is_the_data() -> None:
    raw = parse_single("application/json; charset=utf-8", b'{"nik": "1"}', KEMATIAN)
    assert raw.event_type == KEMATIAN
    assert raw.data == {"nik": "1"}
    assert raw.problems == []
    assert raw.prefix == ""


def test_single_body_must_be_an_object() -> None:
    raw = parse_single("application/json", b"[1, 2]", KEMATIAN)
    assert [p["rule"] for p in raw.problems] == ["object_type"]


def test_not_json_is_a_malformed_request_naming_where() -> None:
    with pytest.raises(MalformedRequest) as info:
        parse_single("application/json", b"{nik:", KEMATIAN)
    assert info.value.where == "body"
    with pytest.raises(MalformedRequest):
        parse_single("application/json", b"   ", KEMATIAN)


def test_unsupported_content_type_lists_what_is_taken() -> None:
    with pytest.raises(UnsupportedContentType) as info:
        parse_single("text/plain", b"{}", KEMATIAN)
    assert "application/json" in info.value.supported
    with pytest.raises(UnsupportedContentType):
        parse_batch("application/xml", b"[]")


def test_cloudevent_on_a_type_path_must_be_of_that_type() -> None:
    body = orjson.dumps(_ce(type="dukcapil.kelahiran_dicatat.v1"))
    raw = parse_single(CE_SINGLE, body, KEMATIAN)
    assert any(p["rule"] == "event_type_mismatch" for p in raw.problems)


def test_cloudevent_attributes_are_read() -> None:
    raw = parse_cloudevent_body(CE_SINGLE, orjson.dumps(_ce(subject="s-1")))
    assert raw.problems == []
    assert (raw.id, raw.source, raw.event_type, raw.subject) == (
        "evt-1",
        "/opd/dukcapil/siak",
        KEMATIAN,
        "s-1",
    )
    assert raw.time == dt.datetime(2025, 6, 10, 3, 5, tzinfo=dt.UTC)
    assert raw.type_field == "type" and raw.prefix == "data."
    assert body_kind([raw]) is BodyKind.CLOUDEVENTS


def test_cloudevent_problems_name_each_attribute() -> None:
    event = _ce(specversion="0.3", id=None, time="yesterday", datacontenttype="text/csv")
    raw = parse_cloudevent_body(CE_SINGLE, orjson.dumps(event))
    fields = {p["field"] for p in raw.problems}
    assert {"id", "time", "datacontenttype"} <= fields
    # Once the required attributes are there, the cloudevents SDK checks the rest.
    raw = parse_cloudevent_body(CE_SINGLE, orjson.dumps(_ce(specversion="0.3")))
    assert [p["field"] for p in raw.problems] == ["specversion"]
    assert raw.problems[0]["rule"] == "cloudevents"


def test_cloudevent_data_must_be_a_json_object() -> None:
    raw = parse_cloudevent_body(CE_SINGLE, orjson.dumps(_ce(data=None, data_base64="AAE=")))
    assert {p["field"] for p in raw.problems} == {"data", "data_base64"}


def test_cloudevent_endpoint_takes_structured_mode_only() -> None:
    with pytest.raises(UnsupportedContentType):
        parse_cloudevent_body("application/json", orjson.dumps(_ce()))


def test_plain_batch_elements_are_checked_one_by_one() -> None:
    body = orjson.dumps(
        [
            {"event_type": KEMATIAN, "data": {}, "id": "a", "time": "2025-06-10T10:05:00+07:00"},
            {"event_type": KEMATIAN, "data": [], "colour": "red"},
            "not an object",
            {"data": {}, "time": "2025-06-10T10:05:00"},
        ]
    )
    kind, raws = parse_batch("application/json", body)
    assert kind is BodyKind.PLAIN
    assert [r.index for r in raws] == [0, 1, 2, 3]
    assert raws[0].problems == [] and raws[0].id == "a"
    assert raws[0].time == dt.datetime(2025, 6, 10, 3, 5, tzinfo=dt.UTC)
    assert {p["field"] for p in raws[1].problems} == {"data", "colour"}
    assert [p["rule"] for p in raws[2].problems] == ["object_type"]
    # A naive time is ambiguous: refused, as is a missing event type.
    assert {p["field"] for p in raws[3].problems} == {"event_type", "time"}


def test_ndjson_batch_skips_blank_lines_and_names_a_bad_line() -> None:
    line = orjson.dumps({"event_type": KEMATIAN, "data": {}})
    kind, raws = parse_batch("application/x-ndjson", line + b"\n\n" + line + b"\n")
    assert kind is BodyKind.PLAIN and len(raws) == 2
    with pytest.raises(MalformedRequest) as info:
        parse_batch("application/x-ndjson", line + b"\n{oops\n")
    assert info.value.where == "line 2"


def test_cloudevents_batch() -> None:
    kind, raws = parse_batch(CE_BATCH, orjson.dumps([_ce(), _ce(id="evt-2")]))
    assert kind is BodyKind.CLOUDEVENTS
    assert [r.id for r in raws] == ["evt-1", "evt-2"]


@pytest.mark.parametrize("body", [b"{}", b"[]", b"null"])
def test_a_batch_is_a_non_empty_array(body: bytes) -> None:
    with pytest.raises(MalformedRequest):
        parse_batch("application/json", body)

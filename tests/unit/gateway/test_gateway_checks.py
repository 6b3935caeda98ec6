"""Checking events against contracts and rights; limits; keys; error answers (no I/O)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest

from lintas.directory import Application, InvalidApiKey
from lintas.producers.gateway import (
    EventsInvalid,
    EventTypeNotPermitted,
    InvalidEvent,
    MalformedRequest,
    RateLimited,
    Unauthenticated,
)
from lintas.producers.gateway.auth import Caller, authenticate
from lintas.producers.gateway.errors import problem_for
from lintas.producers.gateway.formats import BodyKind, RawEvent
from lintas.producers.gateway.idempotency import check_key, event_id_for, fingerprint
from lintas.producers.gateway.ingest import check_events, request_key
from lintas.producers.gateway.limits import RateLimiter
from lintas.producers.gateway.openapi import example_json
from lintas.schemas import load_catalog

CATALOG = load_catalog()
KEMATIAN = "dukcapil.kematian_dicatat.v1"
KELAHIRAN = "dukcapil.kelahiran_dicatat.v1"
PINDAH = "dukcapil.pindah_datang.v1"
APP = Application(
    id="siak", name="SIAK", opd="dukcapil", method="gateway", produces=(KEMATIAN, KELAHIRAN)
)
CALLER = Caller(app=APP, key_id="0123456789ab", source="/opd/dukcapil/siak")


def _raw(index: int, event_type: str, data: Any, **over: Any) -> RawEvent:
    return RawEvent(index=index, event_type=event_type, data=data, prefix="data.", **over)


def test_valid_events_become_events_with_the_callers_source() -> None:
    data = example_json(CATALOG.get(KEMATIAN))
    checked = check_events(CALLER, [_raw(0, KEMATIAN, data)], CATALOG, key=None)
    assert checked.invalid == [] and len(checked.accepted) == 1
    index, event = checked.accepted[0]
    assert index == 0
    assert event.source == "/opd/dukcapil/siak"
    assert event.id is None  # the producer makes one


def test_every_violation_is_listed_with_path_rule_and_value() -> None:
    data = {**example_json(CATALOG.get(KEMATIAN)), "nik": "123", "jenis_kelamin": "X"}
    del data["nama"]
    checked = check_events(CALLER, [_raw(4, KEMATIAN, data)], CATALOG, key=None)
    [invalid] = checked.invalid
    assert invalid.index == 4 and invalid.event_type == KEMATIAN
    found = {(e["field"], e["rule"]): e["value"] for e in invalid.errors}
    assert found[("data.nik", "string_pattern_mismatch")] == "123"
    assert found[("data.jenis_kelamin", "enum")] == "X"
    assert found[("data.nama", "missing")] is None


def test_another_opds_type_and_an_unregistered_type_are_refused() -> None:
    izin = example_json(CATALOG.get("dpmptsp.izin_terbit.v1"))
    pindah = example_json(CATALOG.get(PINDAH))
    raws = [_raw(0, "dpmptsp.izin_terbit.v1", izin), _raw(1, PINDAH, pindah)]
    checked = check_events(CALLER, raws, CATALOG, key=None)
    assert checked.accepted == []
    assert checked.refused == [("dpmptsp.izin_terbit.v1", "other_opd"), (PINDAH, "not_registered")]
    assert all(i.permission for i in checked.invalid)
    error = EventTypeNotPermitted("siak", "dukcapil", checked.refused)
    assert "dpmptsp.izin_terbit.v1" in error.message and "OPD dukcapil" in error.message


def test_event_types_are_named_by_their_exact_id() -> None:
    data = example_json(CATALOG.get(KEMATIAN))
    raws = [_raw(0, "opd.dukcapil.kematian_dicatat.v1", data), _raw(1, "dukcapil.nope.v1", data)]
    checked = check_events(CALLER, raws, CATALOG, key=None)
    assert [e["rule"] for i in checked.invalid for e in i.errors] == [
        "unknown_event_type",
        "unknown_event_type",
    ]
    assert KEMATIAN in checked.invalid[0].errors[0]["message"]


def test_a_foreign_cloudevents_source_is_refused() -> None:
    data = example_json(CATALOG.get(KEMATIAN))
    raw = _raw(0, KEMATIAN, data, source="/opd/dinsos/sikesra", id="e1", type_field="type")
    [invalid] = check_events(CALLER, [raw], CATALOG, key=None).invalid
    assert invalid.errors[0]["rule"] == "cloudevents_source"
    assert "/opd/dukcapil/siak" in invalid.errors[0]["message"]


def test_ids_derived_from_the_key_are_stable_and_client_ids_win() -> None:
    data = example_json(CATALOG.get(KEMATIAN))
    raws = [_raw(0, KEMATIAN, data), _raw(1, KEMATIAN, data, id="mine")]
    first = check_events(CALLER, raws, CATALOG, key="k-1").accepted
    again = check_events(CALLER, raws, CATALOG, key="k-1").accepted
    assert [e.id for _, e in first] == [e.id for _, e in again]
    assert first[0][1].id == event_id_for("siak", "k-1", 0)
    assert first[1][1].id == "mine"
    assert event_id_for("siak", "k-1", 0) != event_id_for("other", "k-1", 0)


def test_request_keys() -> None:
    raws = [_raw(0, KEMATIAN, {}, id="a"), _raw(1, KEMATIAN, {}, id="b")]
    assert request_key("h", BodyKind.CLOUDEVENTS, raws) == "h"
    assert request_key(None, BodyKind.PLAIN, raws) is None
    assert request_key(None, BodyKind.CLOUDEVENTS, raws[:1]) == "ce:a"
    batch = request_key(None, BodyKind.CLOUDEVENTS, raws)
    assert batch is not None and batch.startswith("ce-batch:")
    assert batch != request_key(None, BodyKind.CLOUDEVENTS, raws[::-1])


def test_idempotency_key_header_rules() -> None:
    assert check_key("  abc-123 ") == "abc-123"
    for bad in ("", "x" * 256, "kunci\u00e9", "a\tb"):
        with pytest.raises(MalformedRequest):
            check_key(bad)
    assert fingerprint("POST", "/a", b"1") != fingerprint("POST", "/a1", b"")


def test_rate_limiter_refills_and_says_when_to_retry() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=10, burst=20, clock=lambda: now[0])
    limiter.take("siak", 20)
    with pytest.raises(RateLimited) as info:
        limiter.take("siak", 5)
    assert info.value.retry_after == 1  # 5 tokens at 10/s: half a second, rounded up
    limiter.take("sipd", 20)  # another app has its own bucket
    now[0] = 1.0
    limiter.take("siak", 10)
    with pytest.raises(RateLimited) as info:
        limiter.take("siak", 20)
    assert info.value.retry_after == 2
    with pytest.raises(ValueError):
        limiter.take("siak", 21)


class _Verifier:
    def verify_api_key(self, token: str) -> Application:
        if token != "lk_0123456789ab_" + "s" * 43:
            raise InvalidApiKey("key revoked")
        return APP


def test_authenticate_reads_the_bearer_token() -> None:
    caller = authenticate("Bearer lk_0123456789ab_" + "s" * 43, _Verifier())
    assert (caller.app.id, caller.key_id, caller.source) == (
        "siak",
        "0123456789ab",
        "/opd/dukcapil/siak",
    )
    for header, reason in [
        (None, "no Authorization header"),
        ("Basic abc", "the Authorization header must be `Bearer <api key>`"),
        ("Bearer lk_0123456789ab_" + "x" * 43, "key revoked"),
    ]:
        with pytest.raises(Unauthenticated) as info:
            authenticate(header, _Verifier())
        assert info.value.reason == reason


def _body(response: Any) -> dict[str, Any]:
    return dict(orjson.loads(response.body))


def test_error_answers_are_problem_details_with_codes() -> None:
    invalid = InvalidEvent(2, KEMATIAN, [{"field": "data.nik", "rule": "r", "message": "m",
                                          "value": "1"}])  # fmt: skip
    batch = problem_for(EventsInvalid([invalid], 3), single=False, retry_after=5)
    assert batch.status_code == 422
    assert batch.headers["content-type"] == "application/problem+json"
    body = _body(batch)
    assert body["code"] == "validation_failed"
    assert body["errors"] == [invalid.as_json()]
    single = _body(problem_for(EventsInvalid([invalid], 1), single=True, retry_after=5))
    assert single["errors"] == invalid.errors and single["event_type"] == KEMATIAN

    limited = problem_for(RateLimited("siak", 3, rate=10), single=True, retry_after=5)
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "3")
    unauth = problem_for(Unauthenticated("key revoked"), single=True, retry_after=5)
    assert unauth.status_code == 401 and "Bearer" in unauth.headers["www-authenticate"]


def test_producer_errors_are_503_with_retry_after_never_500() -> None:
    from lintas.directory import DirectoryUnavailable
    from lintas.producers import SchemaUnavailable, SpoolFull

    full = SpoolFull("/x", used_bytes=10, limit_bytes=10, records=1, needed_bytes=5)
    starting = DirectoryUnavailable("lintas.directory", "not read yet")
    for error in (full, SchemaUnavailable("s", "down"), starting):
        response = problem_for(error, single=True, retry_after=5)
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) >= 5
    assert problem_for(RuntimeError("bug"), single=True, retry_after=5).status_code == 500


def test_examples_are_json_ready() -> None:
    data = example_json(CATALOG.get(KEMATIAN))
    orjson.dumps(data)
    assert dt.date.fromisoformat(data["tanggal_kematian"])

"""Webhook delivery without I/O: signatures (checked by the reference library), backoff,
Retry-After, the circuit breaker, answer classification, the JSON body, typed events."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import time
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from lintas.consumers._records import DeliveryEnvelope, json_body, read_envelope
from lintas.consumers.subscriber._event import TypedResolver
from lintas.consumers.webhooks import (
    CircuitBreaker,
    CircuitState,
    EndpointError,
    EndpointRejected,
    EndpointThrottled,
    EndpointTimeout,
    EndpointUnreachable,
    RetryPolicy,
    WebhookSender,
    WebhookSigner,
    parse_retry_after,
    webhook_targets,
)
from lintas.directory import DirectorySnapshot, Subscriber
from lintas.schemas import example_event, load_catalog

OLD = "whsec_" + base64.b64encode(b"o" * 32).decode()
NEW = "whsec_" + base64.b64encode(b"n" * 32).decode()


# -- signatures -----------------------------------------------------------------------


def _headers(signer: WebhookSigner, body: bytes) -> dict[str, str]:
    return signer.headers("evt-1", body, timestamp=int(time.time()))


def test_signature_verifies_with_the_reference_library() -> None:
    body = b'{"id":"evt-1","data":{"nik":"3273012108480001"}}'
    headers = _headers(WebhookSigner([NEW]), body)
    assert headers["webhook-id"] == "evt-1"
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(NEW).verify(body, headers) == orjson.loads(body)


def test_during_rotation_both_secrets_verify_and_others_do_not() -> None:
    body = b'{"id":"evt-1"}'
    headers = _headers(WebhookSigner([NEW, OLD]), body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(NEW).verify(body, headers)
    Webhook(OLD).verify(body, headers)
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)


def test_a_changed_body_does_not_verify() -> None:
    headers = _headers(WebhookSigner([NEW]), b'{"a":1}')
    with pytest.raises(WebhookVerificationError):
        Webhook(NEW).verify(b'{"a":2}', headers)


def test_signer_refuses_no_secret_and_garbage() -> None:
    with pytest.raises(ValueError):
        WebhookSigner([])
    with pytest.raises(ValueError):
        WebhookSigner(["whsec_***not base64***"])


# -- backoff and Retry-After ---------------------------------------------------------


def test_backoff_doubles_with_equal_jitter_and_is_capped() -> None:
    policy = RetryPolicy(initial=1.0, maximum=60.0, horizon=3600.0)
    assert policy.delay(1, rand=lambda: 0.0) == 0.5
    assert policy.delay(1, rand=lambda: 0.999) == pytest.approx(1.0, abs=0.01)
    assert policy.delay(4, rand=lambda: 0.0) == 4.0  # base 8: half fixed
    assert policy.delay(40, rand=lambda: 0.999) <= 60.0
    assert policy.delay(40, rand=lambda: 0.0) == 30.0


def test_retry_after_wins_when_longer_but_not_past_the_maximum() -> None:
    policy = RetryPolicy(initial=1.0, maximum=60.0, horizon=3600.0)
    assert policy.delay(1, retry_after=20.0, rand=lambda: 0.0) == 20.0
    assert policy.delay(1, retry_after=10_000.0, rand=lambda: 0.0) == 60.0
    assert policy.delay(1, retry_after=0.0, rand=lambda: 0.0) == 0.5


def test_parse_retry_after_seconds_and_http_date() -> None:
    now = dt.datetime(2025, 6, 10, 3, 0, tzinfo=dt.UTC)
    assert parse_retry_after("120", now=now) == 120.0
    assert parse_retry_after("Tue, 10 Jun 2025 03:01:30 GMT", now=now) == 90.0
    assert parse_retry_after("Tue, 10 Jun 2025 02:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None, now=now) is None


# -- circuit breaker -------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_threshold_then_probes_once() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, cooldown=10.0, max_cooldown=40.0, clock=clock)
    assert breaker.allowed(in_flight=0, limit=8) == 8
    for _ in range(3):
        breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    assert breaker.allowed(in_flight=0, limit=8) == 0
    clock.now += 10.0
    assert breaker.allowed(in_flight=0, limit=8) == 1  # half open: one probe
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.allowed(in_flight=1, limit=8) == 0
    breaker.record_failure()  # the probe failed: open for twice as long
    assert breaker.state is CircuitState.OPEN
    assert breaker.seconds_until_retry() == 20.0
    clock.now += 20.0
    assert breaker.allowed(in_flight=0, limit=8) == 1
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.allowed(in_flight=2, limit=8) == 6


def test_breaker_hold_for_429_does_not_count_as_failure() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, cooldown=10.0, max_cooldown=40.0, clock=clock)
    breaker.hold(5.0)
    assert breaker.state is CircuitState.OPEN
    assert breaker.consecutive_failures == 0
    assert breaker.allowed(in_flight=0, limit=4) == 0
    clock.now += 5.0
    assert breaker.allowed(in_flight=0, limit=4) == 1


# -- the answer of an endpoint ----------------------------------------------------------


def _send(handler: Any) -> int:
    async def run() -> int:
        sender = WebhookSender(
            "sipd",
            timeout=1.0,
            connect_timeout=1.0,
            max_connections=2,
            transport=httpx.MockTransport(handler),
        )
        try:
            return await sender.send("http://sipd.test/hook", "e1", b"{}", WebhookSigner([NEW]))
        finally:
            await sender.aclose()

    return asyncio.run(run())


def test_2xx_is_delivered_and_request_is_signed() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202)

    assert _send(handler) == 202
    request = seen[0]
    assert request.headers["content-type"] == "application/json"
    Webhook(NEW).verify(request.content, dict(request.headers))


@pytest.mark.parametrize(
    ("response", "error", "retriable"),
    [
        (httpx.Response(500, text="boom"), EndpointError, True),
        (httpx.Response(503), EndpointError, True),
        (httpx.Response(429, headers={"Retry-After": "7"}), EndpointThrottled, True),
        (httpx.Response(400, text="bad nik"), EndpointRejected, False),
        (httpx.Response(410), EndpointRejected, False),
        (httpx.Response(301, headers={"Location": "https://x/"}), EndpointRejected, False),
    ],
)
def test_answers_map_to_typed_errors(
    response: httpx.Response, error: type[Exception], retriable: bool
) -> None:
    with pytest.raises(error) as caught:
        _send(lambda request: response)
    assert caught.value.retriable is retriable  # type: ignore[attr-defined]
    assert caught.value.status_code == response.status_code  # type: ignore[attr-defined]
    if isinstance(caught.value, EndpointThrottled):
        assert caught.value.retry_after == 7.0


def test_transport_errors_are_retriable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(EndpointUnreachable) as unreachable:
        _send(refuse)
    assert unreachable.value.retriable and unreachable.value.status_code is None
    with pytest.raises(EndpointTimeout) as timeout:
        _send(hang)
    assert timeout.value.retriable


# -- the body -------------------------------------------------------------------------


def test_body_is_cloudevents_json_with_data_as_sent() -> None:
    envelope = DeliveryEnvelope(
        id="e1", type="bapenda.pajak_dibayar.v1", source="/opd/bapenda/sipd",
        time="2025-06-10T03:05:00+00:00", subject="3273012108480001",
    )  # fmt: skip
    data = {
        "jumlah": Decimal("1500000.00"),
        "tanggal": dt.date(2025, 6, 10),
        "dibayar_pada": dt.datetime(2025, 6, 10, 3, 5, tzinfo=dt.UTC),
        "lampiran": b"\x00\x01",
    }
    doc = orjson.loads(json_body(envelope, data))
    assert doc["specversion"] == "1.0" and doc["id"] == "e1"
    assert doc["subject"] == "3273012108480001"
    assert doc["data"] == {
        "jumlah": "1500000.00",
        "tanggal": "2025-06-10",
        "dibayar_pada": "2025-06-10T03:05:00Z",
        "lampiran": "AAE=",
    }


def test_envelope_reads_last_header_and_tolerates_missing_ones() -> None:
    env = read_envelope([("ce_id", b"a"), ("ce_id", b"b"), ("ce_type", b"t"), ("x", None)])
    assert env.id == "b" and env.type == "t" and env.subject is None and env.time is None


# -- typed events in the SDK ------------------------------------------------------------


def test_full_record_is_typed_projection_is_a_dict() -> None:
    resolver = TypedResolver(load_catalog())
    kematian = load_catalog().get("dukcapil.kematian_dicatat.v1")
    record = example_event(kematian)
    typed = resolver.data("dukcapil.kematian_dicatat.v1", record)
    assert type(typed).__name__ == "KematianDicatat"
    prefixed = resolver.data("id.go.bandung.dukcapil.kematian_dicatat.v1", record)
    assert type(prefixed).__name__ == "KematianDicatat"
    partial = {"nik": record["nik"], "tanggal_kematian": record["tanggal_kematian"]}
    assert resolver.data("dukcapil.kematian_dicatat.v1", partial) == partial
    assert resolver.data("unknown.thing.v1", record) == record


# -- which subscribers get webhooks -------------------------------------------------------


def test_webhook_targets_follow_the_directory() -> None:
    subs = {
        "sipd": Subscriber(name="sipd", opd="bapenda", mode="webhook", webhook_url="https://s/h",
                           app_id="sipd-app"),
        "paused": Subscriber(name="paused", opd="bapenda", mode="webhook",
                             webhook_url="https://p/h", status="paused"),
        "sikesra": Subscriber(name="sikesra", opd="dinsos", mode="kafka"),
    }  # fmt: skip
    snapshot = DirectorySnapshot(subscribers=subs, webhook_secret_ids={"sipd": ("k1", "k2")})
    targets = webhook_targets(snapshot)
    assert set(targets) == {"sipd", "paused"}
    assert targets["sipd"].secret_ids == ("k1", "k2") and targets["sipd"].active
    assert targets["sipd"].app_id == "sipd-app"
    assert not targets["paused"].active

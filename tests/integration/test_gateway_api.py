"""The gateway over real HTTP, on the real broker, registry and database.

Every check that something was published reads the topic back and counts by event id.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
from gateway_helpers import IZIN, KELAHIRAN, KEMATIAN, RunningGateway, running_gateway
from producer_helpers import read_topic

from lintas.kafka import KafkaConnection
from lintas.producers.gateway.openapi import example_json
from lintas.schemas import AvroDeserializer, build_nik, load_catalog, model_for, to_avro_dict
from lintas.schemas.registry import SchemaRegistryClient

pytestmark = pytest.mark.asyncio(loop_scope="session")

CATALOG = load_catalog()
BATCH = "/v1/events:batch"
SINGLE = f"/v1/events/{KEMATIAN}"
CE_JSON = {"Content-Type": "application/cloudevents+json"}
CE_BATCH = {"Content-Type": "application/cloudevents-batch+json"}


def kematian(i: int = 0, **over: Any) -> dict[str, Any]:
    """A valid kematian event of citizen ``i``."""
    nik = build_nik(
        "32.73.01", dt.date(1940, 1, 1) + dt.timedelta(days=i), perempuan=False, nomor_urut=i + 1
    )
    return {**example_json(CATALOG.get(KEMATIAN)), "nik": nik, **over}


def element(data: dict[str, Any], event_type: str = KEMATIAN, **over: Any) -> dict[str, Any]:
    return {"event_type": event_type, "data": data, **over}


def cloudevent(event_id: str, data: dict[str, Any], **over: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "/opd/dukcapil/siak",
        "type": KEMATIAN,
        "time": "2025-06-10T03:05:00.250Z",
        "data": data,
        **over,
    }


GatewayFactory = Callable[..., Any]


@pytest_asyncio.fixture(loop_scope="session")
async def start_gateway(
    kafka_conn: KafkaConnection,
    fresh_db: str,
    registry_url: str,
    topic_factory: Callable[..., Any],
    tmp_path: Path,
) -> AsyncIterator[GatewayFactory]:
    """``await start_gateway(gateway={...})``: one gateway for this test (settings overridden)."""
    stack = []

    async def start(**overrides: Any) -> RunningGateway:
        context = running_gateway(
            kafka_conn=kafka_conn,
            pg_dsn=fresh_db,
            registry_url=registry_url,
            topic_factory=topic_factory,
            tmp_path=tmp_path,
            **overrides,
        )
        stack.append(context)
        return await context.__aenter__()

    try:
        yield start
    finally:
        for context in reversed(stack):
            await context.__aexit__(None, None, None)


@pytest_asyncio.fixture(loop_scope="session")
async def gw(start_gateway: GatewayFactory) -> RunningGateway:
    running: RunningGateway = await start_gateway()
    return running


@pytest_asyncio.fixture(loop_scope="session")
async def client(gw: RunningGateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gw.url, headers=gw.headers(), timeout=60) as c:
        yield c


async def ids_in(conn: KafkaConnection, topic: str) -> list[str]:
    return [r.event_id for r in await read_topic(conn, topic)]


async def test_one_event_lands_in_kafka_as_avro_with_the_apps_envelope(
    gw: RunningGateway, client: httpx.AsyncClient, kafka_conn: KafkaConnection, registry_url: str
) -> None:
    data = kematian(7)
    response = await client.post(SINGLE, json=data)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["status"] == "sent" and answer["event_type"] == KEMATIAN

    [read] = await read_topic(kafka_conn, gw.topic)
    assert read.event_id == answer["id"]
    assert read.headers["ce_source"] == b"/opd/dukcapil/siak"
    assert read.headers["ce_type"] == KEMATIAN.encode()
    assert read.key == data["nik"].encode()
    async with SchemaRegistryClient(registry_url) as registry:
        decoded = await AvroDeserializer(registry).deserialize(read.value, topic=gw.topic)
    expected = to_avro_dict(model_for(KEMATIAN).model_validate(data))
    assert decoded == expected


async def test_batches_in_every_format_and_cloudevents_keep_their_ids(
    gw: RunningGateway, client: httpx.AsyncClient, kafka_conn: KafkaConnection
) -> None:
    accepted: list[str] = []
    plain = await client.post(BATCH, json=[element(kematian(i)) for i in range(3)])
    assert plain.status_code == 202, plain.text
    assert plain.json()["accepted"] == 3 and plain.json()["errors"] == []
    accepted += [e["id"] for e in plain.json()["events"]]

    lines = b"\n".join(orjson.dumps(element(kematian(i), id=f"nd-{i}")) for i in range(2))
    nd = await client.post(BATCH, content=lines, headers={"Content-Type": "application/x-ndjson"})
    assert nd.status_code == 202, nd.text
    assert [e["id"] for e in nd.json()["events"]] == ["nd-0", "nd-1"]
    accepted += ["nd-0", "nd-1"]

    one = await client.post("/v1/events", content=orjson.dumps(cloudevent("ce-1", kematian(1))),
                            headers=CE_JSON)  # fmt: skip
    on_path = await client.post(
        SINGLE, content=orjson.dumps(cloudevent("ce-2", kematian(2))), headers=CE_JSON
    )
    batch = await client.post(
        BATCH,
        content=orjson.dumps([cloudevent(f"ce-b{i}", kematian(i)) for i in range(2)]),
        headers=CE_BATCH,
    )
    for response in (one, on_path, batch):
        assert response.status_code == 202, response.text
    assert one.json()["id"] == "ce-1" and on_path.json()["id"] == "ce-2"
    accepted += ["ce-1", "ce-2", "ce-b0", "ce-b1"]

    reads = await read_topic(kafka_conn, gw.topic)
    assert sorted(r.event_id for r in reads) == sorted(accepted)
    times = {r.event_id: r.headers["ce_time"] for r in reads}
    assert times["ce-1"] == b"2025-06-10T03:05:00.250Z"


async def test_an_invalid_batch_publishes_nothing_unless_partial(
    gw: RunningGateway, client: httpx.AsyncClient, kafka_conn: KafkaConnection
) -> None:
    events = [
        element(kematian(0)),
        element(kematian(1, nik="12345", tanggal_kematian="kemarin")),
        element(kematian(2)),
        element(kematian(3), event_type="dukcapil.tidak_ada.v1"),
    ]
    refused = await client.post(BATCH, json=events)
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert refused.headers["content-type"] == "application/problem+json"
    assert problem["code"] == "validation_failed"
    by_index = {e["index"]: e for e in problem["errors"]}
    assert set(by_index) == {1, 3}
    rules = {(e["field"], e["rule"]) for e in by_index[1]["errors"]}
    assert ("data.nik", "string_pattern_mismatch") in rules
    assert {e["field"] for e in by_index[1]["errors"]} >= {"data.nik", "data.tanggal_kematian"}
    assert by_index[1]["errors"][0]["value"] == "12345"
    assert by_index[3]["errors"][0]["rule"] == "unknown_event_type"
    assert await ids_in(kafka_conn, gw.topic) == []

    partial = await client.post(BATCH, json=events, params={"partial": "true"})
    assert partial.status_code == 202, partial.text
    answer = partial.json()
    assert (answer["accepted"], answer["rejected"]) == (2, 2)
    assert [e["index"] for e in answer["events"]] == [0, 2]
    assert [e["index"] for e in answer["errors"]] == [1, 3]
    assert sorted(await ids_in(kafka_conn, gw.topic)) == sorted(e["id"] for e in answer["events"])


async def test_an_app_publishes_only_what_it_is_registered_for(
    gw: RunningGateway, client: httpx.AsyncClient, kafka_conn: KafkaConnection
) -> None:
    izin = example_json(CATALOG.get(IZIN))
    other_opd = await client.post(f"/v1/events/{IZIN}", json=izin)
    assert other_opd.status_code == 403
    problem = other_opd.json()
    assert IZIN in problem["detail"] and "dukcapil" in problem["detail"]
    assert problem["refused"] == [{"event_type": IZIN, "reason": "other_opd"}]

    pindah = "dukcapil.pindah_datang.v1"
    not_registered = await client.post(
        f"/v1/events/{pindah}", json=example_json(CATALOG.get(pindah))
    )
    assert not_registered.status_code == 403
    assert not_registered.json()["refused"][0]["reason"] == "not_registered"

    mixed = [element(kematian(0)), element(izin, event_type=IZIN)]
    assert (await client.post(BATCH, json=mixed)).status_code == 403
    partial = await client.post(BATCH, json=mixed, params={"partial": "true"})
    assert partial.status_code == 202
    assert partial.json()["errors"][0]["errors"][0]["rule"] == "not_permitted"
    assert await ids_in(kafka_conn, gw.topic) == [partial.json()["events"][0]["id"]]


async def test_a_retry_with_the_same_key_gets_the_first_answer_and_publishes_nothing(
    gw: RunningGateway, client: httpx.AsyncClient, kafka_conn: KafkaConnection
) -> None:
    events = [element(kematian(i)) for i in range(3)]
    key = {"Idempotency-Key": "kirim-2025-06-10-001"}
    first = await client.post(BATCH, json=events, headers=key)
    again = await client.post(BATCH, json=events, headers=key)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers

    reused = await client.post(BATCH, json=events[:1], headers=key)
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"

    ce = orjson.dumps(cloudevent("ce-retry", kematian(5)))
    ce_first = await client.post("/v1/events", content=ce, headers=CE_JSON)
    ce_again = await client.post("/v1/events", content=ce, headers=CE_JSON)
    assert ce_again.json() == ce_first.json() and ce_again.headers["idempotent-replayed"] == "true"

    # Retries racing the first request: each gets the first answer or 409, one publishes.
    racing = {"Idempotency-Key": "kirim-2025-06-10-002"}
    answers = await asyncio.gather(
        *(client.post(BATCH, json=events[1:], headers=racing) for _ in range(5))
    )
    assert {r.status_code for r in answers} <= {202, 409}
    published = {
        tuple(e["id"] for e in r.json()["events"]) for r in answers if r.status_code == 202
    }
    assert len(published) == 1
    assert all("retry-after" in r.headers for r in answers if r.status_code == 409)

    # Keys are per application: another app's same key is a request of its own.
    _, other = await gw.directory.add_application(
        {"id": "siak-kecamatan", "name": "SIAK Kecamatan", "opd": "dukcapil",
         "method": "gateway", "produces": [KEMATIAN]}
    )  # fmt: skip
    assert other is not None
    await gw.wait_for(lambda: gw.knows(other.token), "the second application's key")
    theirs = await client.post(
        BATCH, json=events, headers={**key, "Authorization": f"Bearer {other.token}"}
    )
    assert theirs.status_code == 202 and "idempotent-replayed" not in theirs.headers

    ids = await ids_in(kafka_conn, gw.topic)
    expected = [e["id"] for r in (first, theirs) for e in r.json()["events"]] + ["ce-retry"]
    expected += list(published.pop())
    assert sorted(ids) == sorted(expected), "a retry published something again"


async def test_a_revoked_key_is_refused_without_a_restart(
    gw: RunningGateway, client: httpx.AsyncClient
) -> None:
    assert (await client.post(SINGLE, json=kematian(0))).status_code == 202
    fresh = await gw.directory.issue_key(gw.app_id, overlap=None)
    await gw.directory.revoke_keys(gw.app_id, gw.token.split("_")[1], force=True)
    await gw.wait_for(lambda: not gw.knows(gw.token), "the revocation")
    refused = await client.post(SINGLE, json=kematian(0))
    assert refused.status_code == 401
    assert refused.json()["reason"] == "key revoked"
    assert refused.headers["www-authenticate"].startswith("Bearer")
    await gw.wait_for(lambda: gw.knows(fresh.token), "the new key")
    new_key = {"Authorization": f"Bearer {fresh.token}"}
    ok = await client.post(SINGLE, json=kematian(0), headers=new_key)
    assert ok.status_code == 202

    for headers in ({"Authorization": ""}, {"Authorization": "Bearer nonsense"}):
        assert (await client.post(SINGLE, json=kematian(0), headers=headers)).status_code == 401


async def test_key_use_is_written_to_the_directory_in_batches(
    start_gateway: GatewayFactory,
) -> None:
    gw = await start_gateway(gateway={"key_touch_interval_s": 0.2})
    key_id = gw.token.split("_")[1]
    [before] = await gw.directory.list_keys(gw.app_id)
    assert before.last_used_at is None
    async with httpx.AsyncClient(base_url=gw.url, headers=gw.headers()) as client:
        for i in range(5):
            assert (await client.post(SINGLE, json=kematian(i))).status_code == 202
    for _ in range(200):
        [after] = await gw.directory.list_keys(gw.app_id)
        if after.last_used_at is not None:
            break
        await asyncio.sleep(0.05)
    assert after.key_id == key_id and after.last_used_at is not None


async def test_limits_answer_413_429_408_and_never_publish(
    start_gateway: GatewayFactory, kafka_conn: KafkaConnection
) -> None:
    gw = await start_gateway(
        gateway={
            "max_body_bytes": 4096,
            "max_batch_events": 2,
            "rate_limit_per_s": 0.5,
            "rate_limit_burst": 3,
            "request_timeout_s": 1.0,
        }
    )
    async with httpx.AsyncClient(base_url=gw.url, headers=gw.headers(), timeout=30) as client:
        big = await client.post(SINGLE, json={**kematian(0), "nama": "x" * 5000})
        assert big.status_code == 413 and big.json()["code"] == "payload_too_large"
        many = await client.post(BATCH, json=[element(kematian(i)) for i in range(3)])
        assert many.status_code == 413

        statuses = [(await client.post(SINGLE, json=kematian(i))).status_code for i in range(4)]
        assert statuses == [202, 202, 202, 429]
        limited = await client.post(SINGLE, json=kematian(9))
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1

        # A client that stops half-way through its body (raw socket: a real client would
        # still be writing when the answer comes).
        host, port = gw.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            f"POST {SINGLE} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {gw.token}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{".encode()
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 30)
        writer.close()
        assert status_line.split()[1] == b"408", status_line

        assert (await client.post("/v1/events/nope.v1", json={})).status_code == 404
        assert (
            await client.post(SINGLE, content=b"<x/>", headers={"Content-Type": "text/xml"})
        ).status_code == 415
        malformed = await client.post(
            SINGLE, content=b"{oops", headers={"Content-Type": "application/json"}
        )
        assert malformed.status_code == 400 and malformed.json()["where"] == "body"
    assert len(await ids_in(kafka_conn, gw.topic)) == 3


async def test_probes_metrics_and_the_openapi_document(
    gw: RunningGateway, client: httpx.AsyncClient
) -> None:
    assert (await client.post(SINGLE, json=kematian(0))).status_code == 202
    assert (await client.post(SINGLE, json={"nik": 1})).status_code == 422
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "ready": True,
        "directory": "ready",
        "kafka": "connected",
        "spooled": 0,
        "idempotency_store": "ok",
    }
    metrics = (await client.get("/metrics")).text
    assert 'lintas_gateway_events_total{app="siak",outcome="sent"} 1.0' in metrics
    assert 'lintas_gateway_events_total{app="siak",outcome="invalid"} 1.0' in metrics
    assert 'lintas_gateway_requests_total{code="202",route="event"} 1.0' in metrics
    assert 'lintas_producer_sent_total{producer="gateway"' in metrics
    assert "lintas_producer_spool_records" in metrics
    doc = (await client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    assert SINGLE in doc["paths"] and BATCH in doc["paths"]
    assert f"/v1/events/{KELAHIRAN}" in doc["paths"]


async def test_before_the_directory_is_read_requests_get_503_not_500(
    kafka_conn: KafkaConnection, fresh_db: str, registry_url: str, tmp_path: Path
) -> None:
    from prometheus_client import CollectorRegistry

    from lintas.producers.gateway import Gateway, GatewayServer
    from lintas.settings import GatewaySettings, ProducerSettings, Settings

    settings = Settings(
        data_dir=tmp_path,
        producer=ProducerSettings(spool_dir=tmp_path / "spool"),
        # A topic nobody created: the view keeps retrying, as after a start with Kafka away.
        gateway=GatewaySettings(directory_topic="test.gateway.nowhere.directory"),
    )
    gateway = Gateway(
        settings,
        kafka=kafka_conn,
        pg_dsn=fresh_db,
        registry=registry_url,
        metrics_registry=CollectorRegistry(),
    )
    async with (
        GatewayServer(gateway, port=0) as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["directory"] == "starting"
        response = await client.post(
            SINGLE,
            json=kematian(0),
            headers={"Authorization": "Bearer lk_0123456789ab_" + "s" * 43},
        )
        assert response.status_code == 503 and "retry-after" in response.headers
        assert (await client.get("/healthz")).status_code == 200

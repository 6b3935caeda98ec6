"""The dead-letter browser: real dead letters on the portal's own DLQ topic, masked, replayed."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from portal_support import OPERATOR, VIEWER, Portal, seed, signed_in

from lintas.directory import Directory
from lintas.kafka import KafkaConnection, create_consumer, create_producer
from lintas.portal.testing import csrf_of
from lintas.schemas import encode, example_event, load_catalog
from lintas.schemas.registry import SchemaRegistryClient
from lintas.streams.dlq import REPLAY_HEADER, Reason, dead_letter_headers

pytestmark = pytest.mark.asyncio(loop_scope="session")

KEMATIAN = load_catalog().get("dukcapil.kematian_dicatat.v1")


async def _dead_letters(
    kafka_conn: KafkaConnection, registry_url: str, dlq_topic: str, source_topic: str
) -> dict[str, Any]:
    record = example_event(KEMATIAN)
    async with SchemaRegistryClient(registry_url) as registry:
        schema_id = await registry.register(KEMATIAN.subject, KEMATIAN.schema_str)
    value = encode(schema_id, KEMATIAN.parsed_schema, record)
    producer = create_producer(kafka_conn)
    await producer.start()
    try:
        for i, (reason, message) in enumerate(
            [
                (Reason.INVALID_NIK, f"NIK {record['nik']} names no real district"),
                (Reason.UNKNOWN_WILAYAH, "kode_wilayah 99.99.99.9999 is not in the reference"),
            ]
        ):
            headers = dead_letter_headers(
                [("ce_id", f"evt-{i}".encode()), ("ce_type", KEMATIAN.id.encode())],
                reason=reason, message=message, field="nik", topic=source_topic, partition=0,
                offset=10 + i, now=dt.datetime.now(dt.UTC), event_type=KEMATIAN.id, opd="dukcapil",
            )  # fmt: skip
            await producer.send_and_wait(
                dlq_topic, value, key=record["nik"].encode(), headers=headers
            )
    finally:
        await producer.stop()
    return record


async def test_dlq_browser_masks_and_replays(
    portal: Portal,
    directory: Directory,
    kafka_conn: KafkaConnection,
    registry_url: str,
    topic_factory: Callable[..., Any],
) -> None:
    await seed(directory)
    source = await topic_factory("test.portal.source.")
    record = await _dead_letters(
        kafka_conn, registry_url, portal.env["LINTAS_PORTAL__DLQ_TOPIC"], source
    )

    viewer = signed_in(portal, VIEWER)
    listing = viewer.get("/dlq")
    assert listing.status_code == 200
    assert re.search(
        r'data-key="invalid_nik\|dukcapil">.*?<td class="num">1</td>', listing.text, re.S
    )
    assert "[NIK_1] names no real district" in listing.text
    assert record["nik"] not in listing.text and record["nama"] not in listing.text
    assert 'data-testid="replay"' not in listing.text
    assert viewer.get("/dlq/0:0").status_code == 403
    assert (
        viewer.post(
            "/dlq/replay", data={"csrf_token": csrf_of(listing.text), "ref": "0:0"}
        ).status_code
        == 403
    )

    operator = signed_in(portal, OPERATOR)
    page = operator.get("/dlq").text
    refs = re.findall(r'name="ref" value="([0-9]+:[0-9]+)"', page)
    assert len(refs) == 2
    detail = operator.get(f"/dlq/{refs[0]}").text
    content = re.search(r'data-testid="dlq-content">(.*?)</pre>', detail, re.S)
    assert content is not None, detail
    assert record["kode_wilayah"] in content.group(1)  # not personal data: shown
    assert "\u2022\u2022\u2022" in content.group(1)
    for pii in ("nik", "nama", "nomor_kk"):
        assert str(record[pii]) not in detail, pii
    assert operator.get("/dlq/9:999999").status_code == 404

    token = csrf_of(page)
    assert operator.post("/dlq/replay", data={"csrf_token": token}).status_code == 422
    replayed = operator.post("/dlq/replay", data={"csrf_token": token, "ref": refs})
    assert replayed.status_code == 200, replayed.text
    assert replayed.text.count("Dikirim ulang") == 2

    consumer = create_consumer(kafka_conn, source, group_id=None)
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=10_000)
        while sum(len(v) for v in batch.values()) < 2:
            more = await consumer.getmany(timeout_ms=10_000)
            assert more, "replayed records did not arrive"
            for tp, records in more.items():
                batch.setdefault(tp, []).extend(records)
    finally:
        await consumer.stop()
    arrived = [r for records in batch.values() for r in records]
    assert sorted(dict(r.headers)["ce_id"] for r in arrived) == [b"evt-0", b"evt-1"]
    assert all(REPLAY_HEADER in dict(r.headers) for r in arrived)
    assert all(not k.startswith("lintas.dlq.") for r in arrived for k, _ in r.headers)

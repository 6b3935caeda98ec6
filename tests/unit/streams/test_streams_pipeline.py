"""The pipeline: repeats dropped, a record acked only once its output is delivered, failed
deliveries sent again, ids remembered in their source partition, outcomes counted."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from lintas.schemas import AvroSerializer, load_catalog
from lintas.schemas.testing import InMemorySchemaResolver
from lintas.streams import Processor, SourceRecord, StreamTopics
from lintas.streams.dedup import DedupIndex
from lintas.streams.metrics import Outcome, WindowCounter
from lintas.streams.pipeline import Pipeline
from lintas.streams.testing import cloudevent_headers, varied_event

KEMATIAN = load_catalog().get("dukcapil.kematian_dicatat.v1")
NAMES = StreamTopics()


class Broker:
    """Holds each send until released; fails the first ``fail`` deliveries."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.pending: list[tuple[asyncio.Future, str, str | None]] = []
        self.delivered: list[tuple[str, str | None]] = []
        self.changelog: list[tuple[int, str, int]] = []
        self.unwritten: list[asyncio.Future] = []
        self.auto_write = True

    async def send(self, topic: str, key: Any, value: Any, headers: list) -> asyncio.Future:
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        event_id = dict(headers).get("ce_id", b"").decode() or None
        self.pending.append((future, topic, event_id))
        return future

    def write(self, partition: int, key: str, value: int) -> asyncio.Future:
        self.changelog.append((partition, key, value))
        written: asyncio.Future = asyncio.get_running_loop().create_future()
        self.unwritten.append(written)
        return written

    def write_changelog(self) -> None:
        while self.unwritten:
            self.unwritten.pop().set_result(None)

    async def release(self) -> None:
        while self.pending:
            future, topic, event_id = self.pending.pop(0)
            if self.fail:
                self.fail -= 1
                future.set_exception(ConnectionError("broker gone"))
            else:
                future.set_result(None)
                self.delivered.append((topic, event_id))
            await asyncio.sleep(0)
        await asyncio.sleep(0.05)  # let resends run
        if self.auto_write:
            self.write_changelog()
            await asyncio.sleep(0)


@pytest.fixture
def registry() -> InMemorySchemaResolver:
    return InMemorySchemaResolver()


async def _records(registry, ids: list[str], *, garbage: set[str] = frozenset()) -> list:
    serializer = AvroSerializer(registry, auto_register=True)
    out = []
    for offset, event_id in enumerate(ids):
        value = await serializer.serialize(KEMATIAN, varied_event(KEMATIAN, offset))
        out.append(
            SourceRecord(
                topic=NAMES.source(KEMATIAN.id),
                partition=offset % 2,
                offset=offset,
                timestamp_ms=None,
                key=b"k",
                value=b"junk" if event_id in garbage else value,
                headers=cloudevent_headers(KEMATIAN, event_id=event_id),
            )
        )
    return out


def _pipeline(registry, broker: Broker, store: dict, counter: WindowCounter) -> Pipeline:
    processor = Processor(registry, NAMES)  # type: ignore[arg-type]
    dedup = DedupIndex(store, broker, dt.timedelta(days=7))
    return Pipeline(processor, dedup, counter, broker.send)


def _counts(counter: WindowCounter) -> dict[Outcome, int]:
    out: dict[Outcome, int] = {}
    for record in counter.drain():
        out[record.outcome] = out.get(record.outcome, 0) + record.count
    return out


async def test_records_are_acked_once_output_and_id_are_durable(registry) -> None:
    broker, store, counter = Broker(), {}, WindowCounter(60, "w1")
    broker.auto_write = False
    pipeline = _pipeline(registry, broker, store, counter)
    acked: list[int] = []
    records = await _records(registry, ["a", "b", "a", "c"], garbage={"c"})
    for record in records:
        await pipeline.submit(record, lambda r=record: acked.append(r.offset))
    # The repeat of "a" waits for the original, which is still in flight: nothing is acked.
    assert acked == [] and pipeline.in_flight == 3
    await broker.release()
    await pipeline.drain()
    assert acked == [], "delivered, but the ids are not in the changelog yet"
    broker.write_changelog()
    await asyncio.sleep(0)
    assert sorted(acked) == [0, 1, 2, 3]
    assert [i for t, i in broker.delivered if t.startswith("lintas.canonical.")] == ["a", "b"]
    assert [i for t, i in broker.delivered if t == "lintas.dlq"] == ["c"]
    assert sorted(k for _, k, _ in broker.changelog) == [
        "/opd/dukcapil/testapp a",
        "/opd/dukcapil/testapp b",
        "@opd.dukcapil.kematian_dicatat.v1:1:3",
    ]
    assert [(p, k[-1]) for p, k, _ in broker.changelog if not k.startswith("@")] == [
        (0, "a"),
        (1, "b"),
    ], "an id is remembered in its source partition"
    assert _counts(counter) == {
        Outcome.ACCEPTED: 2,
        Outcome.DUPLICATE: 1,
        Outcome.DEAD_LETTERED: 1,
    }


async def test_seen_ids_and_reprocessed_dead_letters_are_not_sent_again(registry) -> None:
    broker, store, counter = Broker(), {}, WindowCounter(60, "w1")
    pipeline = _pipeline(registry, broker, store, counter)
    first = await _records(registry, ["a", "b", "c"], garbage={"c"})
    for record in first:
        await pipeline.submit(record, lambda: None)
    await broker.release()
    counter.drain()
    # A producer retry of "b", a new "x", and record "c" read again after a crash.
    again = await _records(registry, ["b", "x"])
    for record in [*again, first[2]]:
        await pipeline.submit(record, lambda: None)
    await broker.release()
    assert [i for _, i in broker.delivered[3:]] == ["x"]
    assert _counts(counter) == {Outcome.ACCEPTED: 1, Outcome.DUPLICATE: 2}


async def test_a_failed_delivery_is_sent_again_and_acked_after(registry, monkeypatch) -> None:
    monkeypatch.setattr("lintas.streams.pipeline._FIRST_RETRY_S", 0.01)
    broker, store, counter = Broker(fail=2), {}, WindowCounter(60, "w1")
    pipeline = _pipeline(registry, broker, store, counter)
    acked: list[int] = []
    for record in await _records(registry, ["a", "b", "c"]):
        await pipeline.submit(record, lambda r=record: acked.append(r.offset))
    await broker.release()
    assert acked == [2], "a record whose output failed must stay unacked"
    for _ in range(20):
        await broker.release()
        if len(acked) == 3:
            break
    await pipeline.drain()
    assert sorted(i for _, i in broker.delivered) == ["a", "b", "c"]
    assert sorted(acked) == [0, 1, 2] and len(store) == 3

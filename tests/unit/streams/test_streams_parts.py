"""Dedup horizon, metrics windows, topic names, event types loaded from a schema text."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import json

import orjson
import pytest

from lintas.schemas import CatalogError, load_catalog
from lintas.streams import StreamTopics, event_type_from_schema
from lintas.streams.dedup import ChangelogWriter, DedupIndex, changelog_topic_configs
from lintas.streams.metrics import Outcome, WindowCounter, encode_metric

DAY_MS = 24 * 3600 * 1000


def test_dedup_forgets_ids_after_the_horizon() -> None:
    store: dict[str, int] = {}
    changelog: list[tuple[int, str, int]] = []

    class Sink:
        def write(self, partition: int, key: str, value: int) -> None:
            changelog.append((partition, key, value))

    dedup = DedupIndex(store, Sink(), dt.timedelta(days=7))
    dedup.remember("a", 4, now_ms=0)
    assert changelog == [(4, "a", 0)]
    assert dedup.seen("a", now_ms=7 * DAY_MS - 1)
    assert not dedup.seen("a", now_ms=7 * DAY_MS)
    assert not dedup.seen("b", now_ms=0)
    dedup.remember("b", 0, now_ms=3 * DAY_MS)
    assert dedup.expire(now_ms=8 * DAY_MS) == 1
    assert set(store) == {"b"}


def test_the_changelog_is_compacted_and_deleted_a_day_after_the_horizon() -> None:
    assert changelog_topic_configs(dt.timedelta(days=7)) == {
        "cleanup.policy": "compact,delete",
        "retention.ms": str(8 * DAY_MS),
    }


def test_windows_close_at_their_end_and_carry_one_record_per_type_and_outcome() -> None:
    counter = WindowCounter(60, "w1")
    t0 = dt.datetime(2025, 6, 10, 3, 5, 10, tzinfo=dt.UTC)
    counter.add("dukcapil", "dukcapil.kematian_dicatat.v1", Outcome.ACCEPTED, t0, 3)
    counter.add("dukcapil", "dukcapil.kematian_dicatat.v1", Outcome.ACCEPTED, t0)
    counter.add(None, None, Outcome.DEAD_LETTERED, t0)
    counter.add(
        "dinsos", "dinsos.bansos_disalurkan.v1", Outcome.DUPLICATE, t0 + dt.timedelta(minutes=1)
    )
    assert counter.closed(t0 + dt.timedelta(seconds=49)) == []
    closed = counter.closed(t0 + dt.timedelta(seconds=50))
    assert [(r.event_type, r.outcome, r.count) for r in closed] == [
        ("dukcapil.kematian_dicatat.v1", Outcome.ACCEPTED, 4),
        ("unknown", Outcome.DEAD_LETTERED, 1),
    ]
    assert closed[0].window_start == dt.datetime(2025, 6, 10, 3, 5, tzinfo=dt.UTC)
    assert closed[0].window_end == dt.datetime(2025, 6, 10, 3, 6, tzinfo=dt.UTC)
    key, value = encode_metric(closed[0])
    assert key == b"dukcapil.kematian_dicatat.v1|accepted"
    assert json.loads(value) == {
        "window_start": "2025-06-10T03:05:00+00:00",
        "window_end": "2025-06-10T03:06:00+00:00",
        "opd": "dukcapil",
        "event_type": "dukcapil.kematian_dicatat.v1",
        "outcome": "accepted",
        "count": 4,
        "worker": "w1",
    }
    [rest] = counter.drain()
    assert rest.outcome is Outcome.DUPLICATE and counter.drain() == []


def test_topic_names_under_a_prefix() -> None:
    names = StreamTopics("t1.")
    assert names.event_type_id("t1.opd.dukcapil.kematian_dicatat.v1") == (
        "dukcapil.kematian_dicatat.v1"
    )
    assert names.opd_of("t1.opd.dukcapil.kematian_dicatat.v1") == "dukcapil"
    for other in ("opd.dukcapil.kematian_dicatat.v1", "t1.opd.dukcapil.x", "t1.lintas.dlq"):
        assert not names.is_source(other)
    assert names.canonical("a.b.v1") == "t1.lintas.canonical.a.b.v1"
    assert (names.dlq, names.metrics, names.directory) == (
        "t1.lintas.dlq",
        "t1.lintas.metrics",
        "t1.lintas.directory",
    )
    assert StreamTopics().source("a.b.v1") == "opd.a.b.v1"


def test_event_types_load_from_a_registered_schema_under_the_catalog_rules() -> None:
    kematian = load_catalog().get("dukcapil.kematian_dicatat.v1")
    schema = copy.deepcopy(kematian.schema)
    schema.update(namespace="id.lintas.dinbaru", name="KejadianBaru")
    loaded = event_type_from_schema("dinbaru.kejadian_baru.v1", orjson.dumps(schema).decode())
    assert (loaded.id, loaded.subject_field) == ("dinbaru.kejadian_baru.v1", "nik")
    assert loaded.pii_fields["nik"] == "nik"
    del schema["fields"][0]["doc"]
    with pytest.raises(CatalogError):
        event_type_from_schema("dinbaru.kejadian_baru.v1", orjson.dumps(schema).decode())


class _Batch:
    def __init__(self, capacity: int) -> None:
        self.records: list[tuple[bytes, bytes]] = []
        self._capacity = capacity

    def append(self, *, key: bytes, value: bytes, timestamp: int) -> object | None:
        if len(self.records) >= self._capacity:
            return None  # full, as aiokafka's BatchBuilder says it
        self.records.append((key, value))
        return object()


class _Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, int, list[tuple[bytes, bytes]]]] = []
        self.futures: list[asyncio.Future] = []

    def create_batch(self) -> _Batch:
        return _Batch(capacity=2)

    async def send_batch(self, batch: _Batch, topic: str, *, partition: int) -> asyncio.Future:
        self.sent.append((topic, partition, batch.records))
        future = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future


async def test_changelog_entries_go_out_as_batches_per_partition_in_faust_json() -> None:
    producer = _Producer()

    async def get() -> _Producer:
        return producer

    writer = ChangelogWriter(get, "app-dedup-changelog", max_pending=1000)
    written = [writer.write(p, f"/opd/a/b e-{i}", 1_000 + i) for i, p in enumerate([0, 1, 0, 0])]
    await writer.flush()  # returns before the broker answers
    assert producer.sent == [
        ("app-dedup-changelog", 0, [(b'"/opd/a/b e-0"', b"1000"), (b'"/opd/a/b e-2"', b"1002")]),
        ("app-dedup-changelog", 0, [(b'"/opd/a/b e-3"', b"1003")]),
        ("app-dedup-changelog", 1, [(b'"/opd/a/b e-1"', b"1001")]),
    ]
    waiting = asyncio.ensure_future(writer.wait_written())
    await asyncio.sleep(0)
    assert not waiting.done() and not any(w.done() for w in written)
    for future in producer.futures:
        future.set_result(None)
    await waiting
    assert all(w.done() for w in written), "an entry is written once its batch is acked"
    await writer.flush()
    assert len(producer.sent) == 3, "nothing queued, nothing sent"

"""Faults with a broker of our own: stopped half-way, and the producing app killed with SIGKILL.

Whatever ``send`` returned for is in Kafka afterwards, in order per citizen (key); a
duplicate, if any, is the same event with the same id. Counted by event id, never timed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import NewTopic
from producer_helpers import duplicates_are_identical, read_topic
from prometheus_client import CollectorRegistry

from lintas.endpoints import resolve_endpoints
from lintas.kafka import create_admin
from lintas.producers import DeliveryStatus, EventProducer, spool_status
from lintas.schemas import build_nik, example_event, load_catalog, model_for
from lintas.settings import ProducerSettings

HERE = Path(__file__).resolve().parent
APP = HERE / "producer_fault_app.py"
KEMATIAN = load_catalog().get("dukcapil.kematian_dicatat.v1")
WAIT = 240  # seconds before a stage that makes no progress fails the test
TIMEOUTS = {"send_timeout_s": 3, "start_timeout_s": 3, "stop_timeout_s": 3}


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def _tail(path: Path) -> str:
    return path.read_text()[-3000:] if path.exists() else ""


class App:
    """The producing app as a process of its own."""

    def __init__(self, data_dir: Path, spool_dir: Path, topic: str, total: int, work: Path):
        self.ids = work / "acked.txt"
        self.log = work / "app.log"
        self.argv = [sys.executable, str(APP), topic, str(total), str(self.ids)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("LINTAS_")}
        env.update(
            LINTAS_DATA_DIR=str(data_dir),  # the private stack's: its broker and registry
            LINTAS_PRODUCER__SPOOL_DIR=str(spool_dir),
            PYTHONPATH=os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]),
        )
        env.update({f"LINTAS_PRODUCER__{k.upper()}": str(v) for k, v in TIMEOUTS.items()})
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=log)

    async def wait_for_lines(self, count: int) -> None:
        deadline = time.monotonic() + WAIT
        while _lines(self.ids) < count:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"the app exited early:\n{_tail(self.log)}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the app made no progress ({_lines(self.ids)} of {count}):\n{_tail(self.log)}"
                )
            await asyncio.sleep(0.1)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    async def wait_exit(self) -> int:
        assert self.proc is not None
        proc = self.proc
        return await asyncio.to_thread(proc.wait, WAIT * 2)


@pytest.fixture
def own_stack(monkeypatch: pytest.MonkeyPatch, scale: float) -> Iterator[None]:
    """Hide the shared stack's LINTAS_* addresses, so that the private stack's settings (made
    next, by ``private_stack``) and every client derived from them use the private stack."""
    for name in list(os.environ):
        if name.startswith("LINTAS_"):
            monkeypatch.delenv(name)
    yield


async def test_outage_and_sigkill_lose_nothing_that_was_acknowledged(
    own_stack: None, private_stack: Any, tmp_path: Path, scale: float
) -> None:
    stack = private_stack
    assert stack.settings.kafka_bootstrap is None, "the private stack must use its own broker"
    await asyncio.to_thread(stack.up)
    settings = stack.settings
    endpoints = resolve_endpoints(settings)
    conn = endpoints.kafka
    assert endpoints.registry_url, "the private stack runs a registry"
    topic = "test.faults.kematian"
    admin = create_admin(conn)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 3, 1)])
    await admin.close()

    spool_dir = tmp_path / "spool"
    producer_settings = settings.model_copy(
        update={"producer": ProducerSettings(spool_dir=spool_dir, **TIMEOUTS)}
    )

    def in_process() -> EventProducer:
        return EventProducer(
            app="siak",
            opd="dukcapil",
            settings=producer_settings,
            metrics_registry=CollectorRegistry(),
            topic_of=lambda _: topic,
        )

    kematian = model_for(KEMATIAN).model_validate(example_event(KEMATIAN))
    resident = in_process()
    await asyncio.wait_for(resident.start(), WAIT)
    before = await resident.send_many([kematian] * 10)
    assert {d.status for d in before} == {DeliveryStatus.SENT}

    total = max(int(10_000 * scale), 1000)
    app = App(settings.data_dir, spool_dir, topic, total, tmp_path)
    app.start()
    await app.wait_for_lines(total // 4)

    # The broker goes away half-way.
    await asyncio.to_thread(stack.down, only="kafka")
    during = await asyncio.wait_for(resident.send(kematian), WAIT)
    assert during.status is DeliveryStatus.SPOOLED
    # aiokafka's stop() hangs with idempotence when the broker is gone: ours must not.
    await asyncio.wait_for(resident.stop(), WAIT)

    # The app goes on spooling, and is killed with events in its spool.
    await app.wait_for_lines(total * 45 // 100)
    app.kill()
    killed_at = _lines(app.ids)
    waiting = {(i.name, i.slot): i.records for i in spool_status(producer_settings)}
    assert waiting.get(("dukcapil.faults", 0), 0) > 0, waiting

    # Restarted while the broker is still away; the broker comes back later.
    app.start()
    await app.wait_for_lines(killed_at + total // 10)
    await asyncio.to_thread(stack.up)
    assert await app.wait_exit() == 0, _tail(app.log)
    assert _lines(app.ids) >= total

    # The resident producer's spooled event is forwarded by its successor.
    successor = in_process()
    async with successor:
        await asyncio.wait_for(successor.flush(60), WAIT)

    reads = await read_topic(conn, topic)
    found = {r.event_id for r in reads}
    acknowledged = [line.split()[1] for line in app.ids.read_text().splitlines()]
    missing = set(acknowledged) - found
    assert not missing, (
        f"{len(missing)} acknowledged events are not in Kafka: {sorted(missing)[:5]}"
    )
    for delivery in [*before, during]:
        assert delivery.event_id in found

    # In order per citizen: the first copy of each event comes after the first copy of every
    # earlier event of the same citizen.
    first_seen: dict[bytes, list[int]] = defaultdict(list)
    seen: set[str] = set()
    for read in sorted(reads, key=lambda r: (r.partition, r.offset)):
        if read.event_id.startswith("fault-") and read.event_id not in seen:
            seen.add(read.event_id)
            first_seen[read.key].append(int(read.event_id.removeprefix("fault-")))
    assert len(first_seen) == 100
    for key, indexes in first_seen.items():
        assert indexes == sorted(indexes), f"events of {key!r} are out of order"
    assert seen == {f"fault-{i:06d}" for i in range(total)}
    duplicates = duplicates_are_identical(reads)
    statuses = [line.split()[2] for line in app.ids.read_text().splitlines()]
    print(
        f"{total} events: {statuses.count('sent')} acknowledged as sent, "
        f"{statuses.count('spooled')} as spooled; {len(reads)} records in Kafka, "
        f"{len(duplicates)} event ids duplicated"
    )
    assert statuses.count("spooled") > 0 and statuses.count("sent") > 0
    assert all(i.records == 0 for i in spool_status(producer_settings))


async def test_a_stalled_broker_means_spooled_then_forwarded_with_the_same_ids(
    own_stack: None, private_stack: Any, tmp_path: Path
) -> None:
    """A broker that stops answering (SIGSTOP: a long GC pause, a stalled link) is where
    sends time out with batches on the wire, and where aiokafka's stop() hangs."""
    from lintas.deploy.local import StackState

    stack = private_stack
    await asyncio.to_thread(stack.up)
    settings = stack.settings
    conn = resolve_endpoints(settings).kafka
    topic = "test.faults.stall"
    admin = create_admin(conn)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 3, 1)])
    await admin.close()
    kafka_pid = StackState.load(settings.data_dir).components["kafka"].pid  # type: ignore[union-attr]
    assert kafka_pid

    producer_settings = settings.model_copy(
        update={"producer": ProducerSettings(spool_dir=tmp_path / "spool", **TIMEOUTS)}
    )

    def producer() -> EventProducer:
        return EventProducer(
            app="siak",
            opd="dukcapil",
            settings=producer_settings,
            metrics_registry=CollectorRegistry(),
            topic_of=lambda _: topic,
        )

    model = model_for(KEMATIAN)
    base = example_event(KEMATIAN)
    niks = [
        build_nik(
            "32.73.01", dt.date(1950, 1, 1) + dt.timedelta(days=k), perempuan=True, nomor_urut=k + 1
        )
        for k in range(10)
    ]
    events = [model.model_validate({**base, "nik": niks[i % 10]}) for i in range(400)]

    first = producer()
    await asyncio.wait_for(first.start(), WAIT)
    before = await first.send_many(events[:100])
    assert {d.status for d in before} == {DeliveryStatus.SENT}
    os.kill(kafka_pid, signal.SIGSTOP)
    try:
        stalled = await asyncio.wait_for(first.send_many(events[100:300]), WAIT)
        assert {d.status for d in stalled} == {DeliveryStatus.SPOOLED}
        behind = await asyncio.wait_for(first.send_many(events[300:]), WAIT)
        assert {d.status for d in behind} == {DeliveryStatus.SPOOLED}
        await asyncio.wait_for(first.stop(), WAIT)
    finally:
        os.kill(kafka_pid, signal.SIGCONT)

    second = producer()
    async with second:
        await asyncio.wait_for(second.flush(120), WAIT)
        assert second.spooled == 0

    reads = await read_topic(conn, topic)
    ids = [d.event_id for d in [*before, *stalled, *behind]]
    assert {r.event_id for r in reads} == set(ids)
    expected: dict[bytes, list[str]] = defaultdict(list)
    for event, event_id in zip(events, ids, strict=True):
        expected[event.nik.encode()].append(event_id)
    seen: set[str] = set()
    first_seen: dict[bytes, list[str]] = defaultdict(list)
    for read in sorted(reads, key=lambda r: (r.partition, r.offset)):
        if read.event_id not in seen:
            seen.add(read.event_id)
            first_seen[read.key].append(read.event_id)
    assert first_seen == expected, "a citizen's events are out of order"
    duplicates = duplicates_are_identical(reads)
    print(
        f"stalled broker: {len(reads)} records for {len(ids)} events, {len(duplicates)} "
        "late duplicates (same id, same bytes)"
    )

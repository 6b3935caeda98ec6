"""`lintas demo` on a real stack of its own: events in the OPD topics, dead letters in the DLQ,
the story through the worker, the deliverer and the sink, and a second run that reuses
the directory.

Counts come from Kafka and PostgreSQL themselves, not only from the demo's summary.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from lintas.demo import DEMO_APPS, Channel
from lintas.deploy.local import LocalStack
from lintas.endpoints import resolve_endpoints
from lintas.kafka import KafkaConnection, create_admin, create_consumer
from lintas.postgres import connect
from lintas.schemas import load_catalog
from lintas.topics import DLQ_TOPIC

SOURCES = {a.source: a for a in DEMO_APPS}
OPD_TOPICS = sorted(et.topic for et in load_catalog())
BAPENDA_TOPIC = "lintas.deliver.bapenda-epad"
STORY_PARTS = ("gateway", "worker", "sink", "deliver")


def _demo(stack: LocalStack, out: Path, *args: str) -> dict[str, Any]:
    # The stack's own addresses only: none of a shared stack's LINTAS_* may leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINTAS_")}
    env["LINTAS_DATA_DIR"] = str(stack.data_dir)
    done = subprocess.run(
        [sys.executable, "-m", "lintas.cli", "demo", "--json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=420,
    )
    out.write_text(done.stdout + "\n" + done.stderr)  # kept with the run's artefacts
    assert done.returncode == 0, done.stderr[-4000:]
    assert "The platform keeps running" in done.stderr
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


async def _partitions(conn: KafkaConnection, topics: list[str]) -> list[Any]:
    from aiokafka.structs import TopicPartition

    admin = create_admin(conn)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return [
        TopicPartition(t["topic"], p["partition"])
        for t in described
        if t["error_code"] == 0
        for p in t["partitions"]
    ]


async def _ends(conn: KafkaConnection, topics: list[str]) -> dict[Any, int]:
    consumer = create_consumer(conn, group_id=None)
    await consumer.start()
    try:
        partitions = await _partitions(conn, topics)
        return dict(await consumer.end_offsets(partitions)) if partitions else {}
    finally:
        await consumer.stop()


async def _read(conn: KafkaConnection, since: dict[Any, int]) -> list[Any]:
    """Every record appended after ``since`` (up to the current ends)."""
    consumer = create_consumer(conn, group_id=None)
    await consumer.start()
    try:
        partitions = list(since)
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, since[tp])
        records: list[Any] = []

        async def behind() -> bool:
            for tp in partitions:
                if await consumer.position(tp) < ends[tp]:
                    return True
            return False

        while await behind():
            batches = await consumer.getmany(timeout_ms=1000)
            records += [r for tp, rs in batches.items() for r in rs if r.offset < ends[tp]]
        return records
    finally:
        await consumer.stop()


def _header(record: Any, name: str) -> str | None:
    return next((v.decode() for k, v in record.headers if k == name), None)


def _since(conn: KafkaConnection, topics: list[str]) -> dict[Any, int]:
    return asyncio.run(_ends(conn, topics))


def _analytics_rows(dsn: str, nik: str) -> int:
    async def run() -> int:
        conn = await connect(dsn)
        try:
            count = await conn.fetchval(
                "SELECT count(*) FROM analytics.aid_recipients_deceased "
                "WHERE nik = $1 AND paid_after_death",
                nik,
            )
            return int(count)
        finally:
            await conn.close()

    return asyncio.run(run())


def test_demo_publishes_dead_letters_and_plays_the_story(
    private_stack: LocalStack, output_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stack's services inherit this process's environment: a shared stack's addresses
    # (LINTAS_KAFKA_BOOTSTRAP, ...) would send them to that stack instead of this one.
    for name in [n for n in os.environ if n.startswith("LINTAS_")]:
        monkeypatch.delenv(name)
    private_stack.up()
    endpoints = resolve_endpoints(private_stack.settings)
    conn = endpoints.kafka
    topics = [*OPD_TOPICS, DLQ_TOPIC, BAPENDA_TOPIC]
    before = _since(conn, [t for t in topics if t != BAPENDA_TOPIC])

    summary = _demo(
        private_stack,
        output_dir / "demo-run.txt",
        "--duration",
        "30",
        "--rate",
        "high",
        "--seed",
        "7",
    )

    # Events reached the OPD topics, from both kinds of application.
    from_demo = [r for r in asyncio.run(_read(conn, before)) if _header(r, "ce_source") in SOURCES]
    per_app = Counter(_header(r, "ce_source") for r in from_demo if r.topic.startswith("opd."))
    opds = {SOURCES[s].opd for s in per_app}
    assert len(opds) >= 5, per_app
    channels = {SOURCES[s].channel for s in per_app}
    # Node.js reached the gateway.
    assert channels == {Channel.SDK, Channel.GATEWAY}, (per_app, summary["apps"])
    for app_id, counts in summary["apps"].items():
        source = next(a.source for a in DEMO_APPS if a.app_id == app_id)
        # Everything the demo says was sent is in Kafka (the story adds its own two).
        assert per_app[source] >= counts["sent"], (app_id, counts, per_app[source])
        assert counts["refused"] == 0, counts

    # The bad share landed in the DLQ, for the reasons it was made with.
    dead = [r for r in from_demo if r.topic == DLQ_TOPIC]
    assert dead, "no dead letter from the demo's applications"
    reasons = Counter(_header(r, "lintas.dlq.reason") for r in dead)
    assert set(reasons) <= {"invalid_nik", "unknown_wilayah", "future_date"}, reasons
    assert summary["dlq"]["total"] >= 1
    assert summary["directory"]["opds"] >= 7 and summary["directory"]["applications"] >= 10

    # The story, when the parts it needs run (they do in a complete stack).
    rows, _ = private_stack.status()
    running = {r.name for r in rows if r.running and r.healthy}
    story = summary["story"]
    if set(STORY_PARTS) <= running:
        states = {k: s["state"] for k, s in story["steps"].items()}
        assert states == dict.fromkeys(states, "done"), story
        for key in ("webhook", "bapenda", "analytics"):
            assert 0 <= story["steps"][key]["seconds"] < 60
        nik = story["webhook_data"]["nik"]
        assert set(story["webhook_data"]) <= {
            "nik",
            "nomor_kk",
            "tanggal_kematian",
            "nomor_akta_kematian",
            "kode_wilayah",
        }
        assert _analytics_rows(endpoints.pg_dsn, nik) >= 1
    else:
        for part in set(STORY_PARTS) - running:
            assert any(
                s["state"] == "not available" and part in s["detail"]
                for s in story["steps"].values()
            ), (part, story)
    assert set(summary["paused_subscribers"]) == {"dinsos-sipbansos", "dinkes-simpus"}

    # A second run reuses the directory and the keys it issued.
    again = _demo(
        private_stack, output_dir / "demo-second-run.txt", "--duration", "5", "--no-story"
    )
    changes = again["directory"]["changes"]
    assert changes["create"] == 0, changes
    assert changes["update"] <= 2, changes  # only the webhook subscribers, paused before
    assert again["directory"]["new_keys"] == []
    gateway_apps = {a.app_id for a in DEMO_APPS if a.channel is Channel.GATEWAY}
    assert sum(again["apps"][a]["failed"] for a in gateway_apps) == 0

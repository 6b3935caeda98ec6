"""The webhook deliverer against the real broker, database and registry, with receivers on
127.0.0.1 that verify every signature with the ``standardwebhooks`` library.

Faults: a receiver failing with 500 for a while, one that never answers, one that rejects an
event, and a deliverer killed with SIGKILL and started again. Everything is counted by event
id (the receiver deduplicates by ``webhook-id``), never by time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from delivery_helpers import KEMATIAN, DeliveryEnv, delivery_env, wait_for
from standardwebhooks.webhooks import Webhook

from lintas.consumers._records import RecordDecoder
from lintas.consumers.webhooks import Deliverer, HealthStatus, redeliver
from lintas.consumers.webhooks.testing import Received, WebhookReceiver
from lintas.kafka import KafkaConnection
from lintas.postgres import connect
from lintas.settings import DeliverSettings, Settings

pytestmark = pytest.mark.asyncio(loop_scope="session")

FIELDS = ("nik", "tanggal_kematian", "kode_wilayah")


@pytest_asyncio.fixture(loop_scope="session")
async def env(
    fresh_db: str,
    tmp_path: Path,
    kafka_conn: KafkaConnection,
    registry_url: str,
    topic_factory: Callable[..., Any],
) -> AsyncIterator[DeliveryEnv]:
    async with delivery_env(fresh_db, tmp_path, kafka_conn, registry_url, topic_factory) as d:
        yield d


def deliver_settings(env: DeliveryEnv, fresh_db: str, tmp_path: Path, **deliver: Any) -> Settings:
    """Fast retries for tests: the faults play out in seconds."""
    options: dict[str, Any] = {
        "group_id": f"test-deliver-{os.urandom(5).hex()}",
        "directory_topic": env.directory_topic,
        "backoff_initial_s": 0.1,
        "backoff_max_s": 0.5,
        "breaker_threshold": 5,
        "breaker_cooldown_s": 0.2,
        "poll_interval_s": 0.1,
        "request_timeout_s": 2.0,
    }
    return Settings(
        pg_dsn=fresh_db,
        data_dir=tmp_path,
        deliver=DeliverSettings(**(options | deliver)),
    )


async def attempts_by_outcome(dsn: str, subscriber: str) -> dict[tuple[str, int | None], int]:
    conn = await connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT outcome, status_code, count(*) AS n FROM lintas.webhook_attempts "
            "WHERE subscriber = $1 GROUP BY 1, 2",
            subscriber,
        )
    finally:
        await conn.close()
    return {(r["outcome"], r["status_code"]): r["n"] for r in rows}


async def states(dsn: str, subscriber: str) -> dict[str, str]:
    conn = await connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT event_id, state, attempts, dead_lettered_at IS NOT NULL AS written "
            "FROM lintas.webhook_deliveries WHERE subscriber = $1",
            subscriber,
        )
    finally:
        await conn.close()
    return {r["event_id"]: r["state"] + ("+dlq" if r["written"] else "") for r in rows}


async def test_receiver_failing_for_a_while_gets_every_event_once_in_key_order(
    env: DeliveryEnv, fresh_db: str, tmp_path: Path, kafka_conn: KafkaConnection, registry_url: str
) -> None:
    failures = 25

    def flaky(request: Received) -> int:
        # 500 for the first requests whatever they carry, then 204: an endpoint restarting.
        return 500 if len(receiver.requests) < failures else 204

    receiver = WebhookReceiver(respond=flaky)
    await receiver.start()
    try:
        name, secret = await env.subscriber("flaky", url=receiver.url)
        assert secret is not None
        receiver.set_secrets([secret])
        routed = await env.produce(name, 30, keys=6, fields=FIELDS)
        settings = deliver_settings(env, fresh_db, tmp_path)
        async with Deliverer(
            settings, kafka=kafka_conn, pg_dsn=fresh_db, registry_url=registry_url
        ) as deliverer:
            await receiver.wait_for_ids([r.event_id for r in routed], timeout=60)
            await wait_for(
                lambda: _all_in_state(fresh_db, name, len(routed), "delivered"),
                timeout=30,
                what="delivered recorded",
            )
            health = await deliverer.health(subscriber=name)
    finally:
        await receiver.stop()

    # Every event arrived, once per event id, each request signed verifiably.
    assert receiver.accepted_ids() == {r.event_id for r in routed}
    assert receiver.duplicates() == {}
    assert all(r.verified for r in receiver.requests)
    assert sum(r.status == 500 for r in receiver.requests) == failures
    # Order per key: each NIK's events were accepted in the order they were routed.
    accepted_order: dict[str, list[str]] = defaultdict(list)
    for request in receiver.requests:
        if request.status == 204:
            accepted_order[request.payload["subject"]].append(request.webhook_id or "")
    routed_order: dict[str, list[str]] = defaultdict(list)
    for r in routed:
        routed_order[r.key].append(r.event_id)
    assert accepted_order == routed_order
    # The body: CloudEvents JSON with only the projected fields.
    first = next(r for r in receiver.requests if r.status == 204)
    assert first.payload["id"] == first.webhook_id
    assert first.payload["type"] == KEMATIAN.id
    assert set(first.payload["data"]) == set(FIELDS)
    # The log shows the retries: one row per request, 500s as retries.
    log = await attempts_by_outcome(fresh_db, name)
    assert log.get(("retry", 500), 0) == failures
    assert log.get(("delivered", 204), 0) == len(routed)
    assert sum(log.values()) == len(receiver.requests)
    assert health[0].delivered == len(routed)
    assert health[0].failed_attempts == failures
    assert health[0].pending == 0


async def _all_in_state(dsn: str, subscriber: str, count: int, state: str) -> bool:
    found = await states(dsn, subscriber)
    return len(found) == count and all(s.startswith(state) for s in found.values())


async def test_dead_receiver_reaches_dlq_others_unaffected_then_redelivered(
    env: DeliveryEnv, fresh_db: str, tmp_path: Path, kafka_conn: KafkaConnection, registry_url: str
) -> None:
    answer: dict[str, int | None] = {"status": None}  # None: never answer
    dead = WebhookReceiver(respond=lambda request: answer["status"])
    rejected_ids: set[str] = set()
    live = WebhookReceiver(
        respond=lambda request: 422 if request.webhook_id in rejected_ids else 204
    )
    await dead.start()
    await live.start()
    try:
        dead_name, dead_secret = await env.subscriber("dead", url=dead.url)
        live_name, live_secret = await env.subscriber("live", url=live.url)
        assert dead_secret and live_secret
        dead.set_secrets([dead_secret])
        live.set_secrets([live_secret])
        dead_events = await env.produce(dead_name, 8, fields=FIELDS)
        live_events = await env.produce(live_name, 8, fields=FIELDS)
        rejected_ids.add(live_events[3].event_id)
        settings = deliver_settings(
            env,
            fresh_db,
            tmp_path,
            request_timeout_s=0.3,
            retry_horizon_s=3.0,
            breaker_threshold=3,
        )
        async with Deliverer(
            settings, kafka=kafka_conn, pg_dsn=fresh_db, registry_url=registry_url
        ) as deliverer:
            # The live subscriber gets everything but the event it rejects.
            delivered_live = {e.event_id for e in live_events} - rejected_ids
            await live.wait_for_ids(delivered_live, timeout=60)
            # The dead one's events all reach its dead-letter topic, with the reason.
            dead_ids = {e.event_id for e in dead_events}
            letters = await env.wait_dead_letters(dead_name, dead_ids, timeout=90)
            assert set(letters) == dead_ids
            assert {h["reason"] for h in letters.values()} == {"retries_exhausted"}
            assert all(h["subscriber"] == dead_name for h in letters.values())
            # The rejected event went to the live one's DLQ after one attempt, not retried.
            live_letters = await env.wait_dead_letters(live_name, rejected_ids, timeout=30)
            assert set(live_letters) == rejected_ids
            only = live_letters[next(iter(rejected_ids))]
            assert (only["reason"], only["attempts"], only["status"]) == ("rejected", "1", "422")
            assert live.attempts(next(iter(rejected_ids))) == 1
            assert live.accepted_ids() == delivered_live and live.duplicates() == {}

            assert set((await states(fresh_db, dead_name)).values()) == {"dead+dlq"}
            health = {h.subscriber: h for h in await deliverer.health()}
            assert health[dead_name].dead == len(dead_ids)
            assert health[dead_name].status in (HealthStatus.FAILING, HealthStatus.DEGRADED)
            assert health[live_name].delivered == len(delivered_live)
            assert health[live_name].dead == 1

            # The endpoint is back: redeliver the dead letters with the CLI's function.
            answer["status"] = 204
            decoder = RecordDecoder(env.registry)
            report = await redeliver(kafka_conn, deliverer.queue, decoder, dead_name, horizon=120)
            assert (report.chosen, report.requeued) == (len(dead_ids), len(dead_ids))
            await dead.wait_for_ids(dead_ids, timeout=60)
            assert dead.duplicates() == {}
            again = await redeliver(kafka_conn, deliverer.queue, decoder, dead_name, horizon=120)
            assert (again.requeued, again.skipped) == (0, len(dead_ids))
    finally:
        await dead.stop()
        await live.stop()


async def test_restart_after_sigkill_replays_nothing_and_follows_a_rotation(
    env: DeliveryEnv, fresh_db: str, tmp_path: Path, registry_url: str
) -> None:
    receiver = WebhookReceiver()
    await receiver.start()
    name, old_secret = await env.subscriber("restart", url=receiver.url)
    assert old_secret is not None
    receiver.set_secrets([old_secret])
    settings = deliver_settings(env, fresh_db, tmp_path)
    child_env = {
        **os.environ,
        "LINTAS_PG_DSN": fresh_db,
        "LINTAS_DATA_DIR": str(tmp_path),
        "LINTAS_REGISTRY_URL": registry_url,
        "LINTAS_DELIVER__GROUP_ID": settings.deliver.group_id,
        "LINTAS_DELIVER__DIRECTORY_TOPIC": settings.deliver.directory_topic,
        "LINTAS_DELIVER__POLL_INTERVAL_S": "0.1",
    }
    log = (tmp_path / "deliver.log").open("ab")

    def start() -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "lintas.cli", "deliver"]
        return subprocess.Popen(argv, env=child_env, stdout=log, stderr=log)

    process = start()
    try:
        first = await env.produce(name, 15, keys=5)
        await receiver.wait_for_ids([e.event_id for e in first], timeout=60)
        # Killed only once the deliveries are recorded: a POST whose result was not yet
        # written is, by design, sent again (at least once); here nothing may come twice.
        await wait_for(
            lambda: _all_in_state(fresh_db, name, 15, "delivered"),
            timeout=30,
            what="first batch recorded",
        )
        process.send_signal(signal.SIGKILL)
        process.wait(10)

        # A rotation while it is down: the new deliverer signs with both secrets.
        new_secret = await env.directory.rotate_webhook_secret(name)
        process = start()
        second = await env.produce(name, 15, keys=5)
        await receiver.wait_for_ids([e.event_id for e in second], timeout=60)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        await receiver.stop()

    everything = {e.event_id for e in first + second}
    assert receiver.accepted_ids() == everything
    assert receiver.duplicates() == {}, "a restart replayed events"
    assert len(await states(fresh_db, name)) == len(everything)
    conn = await connect(fresh_db)
    try:
        copied = await conn.fetchval(
            "SELECT sum(next_offset) FROM lintas.webhook_offsets WHERE topic = $1",
            f"lintas.deliver.{name}",
        )
    finally:
        await conn.close()
    assert copied == len(everything)
    second_ids = {e.event_id for e in second}
    for request in receiver.requests:
        if request.webhook_id in second_ids:
            assert len((request.signature or "").split(" ")) == 2
            for secret in (old_secret, new_secret):
                Webhook(secret).verify(request.body, dict(request.headers))


async def test_status_log_and_activity_of_a_subscriber_application(
    env: DeliveryEnv, fresh_db: str, tmp_path: Path, kafka_conn: KafkaConnection, registry_url: str
) -> None:
    async with WebhookReceiver() as receiver:
        name, _ = await env.subscriber("cli", url=receiver.url, app_id=None)
        await env.directory.add_application(
            {"id": "sikesra", "name": "SIKS-NG Kota Bandung", "opd": "dinsos", "method": "sdk"},
            issue_key=False,
        )
        await env.directory.update_subscriber(name, app_id="sikesra")
        routed = await env.produce(name, 3)
        settings = deliver_settings(env, fresh_db, tmp_path)
        async with Deliverer(
            settings, kafka=kafka_conn, pg_dsn=fresh_db, registry_url=registry_url
        ):
            await receiver.wait_for_ids([r.event_id for r in routed], timeout=60)
            await wait_for(
                lambda: _all_in_state(fresh_db, name, 3, "delivered"),
                timeout=30,
                what="recorded",
            )
    # The subscriber is an application: what it received makes it count as integrated.
    (report,) = [r for r in await env.directory.integration_report() if r.app_id == "sikesra"]
    assert report.received_in_window == len(routed) and report.integrated
    cli_env = {**os.environ, "LINTAS_PG_DSN": fresh_db, "LINTAS_DATA_DIR": str(tmp_path)}

    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "lintas.cli", "deliver", *args],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    import orjson

    status = orjson.loads(run("status", name, "--json"))
    assert [(s["subscriber"], s["delivered"], s["status"]) for s in status] == [
        (name, 3, "healthy")
    ]
    log = orjson.loads(run("log", name, "--json"))
    assert {row["event_id"] for row in log} == {r.event_id for r in routed}
    assert {row["outcome"] for row in log} == {"delivered"}

"""The local runner: up/status/down through the CLI, crash recovery, reboot leftovers.

Each test here stops or kills processes, so each runs on a private stack of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from lintas.deploy.local import LocalStack, StackState
from lintas.deploy.local._process import wait_exit
from lintas.endpoints import resolve_endpoints
from lintas.kafka import create_admin, create_consumer, create_producer
from lintas.portal.testing import sign_in

FAST_ENV = {
    "LINTAS_LOCAL__KAFKA_PORT": "0",
    "LINTAS_LOCAL__KAFKA_CONTROLLER_PORT": "0",
    "LINTAS_LOCAL__KAFKA_TLS_PORT": "0",
    "LINTAS_LOCAL__PG_PORT": "0",
    "LINTAS_LOCAL__FAST_TEST_PROFILE": "true",
    "LINTAS_LOCAL__KAFKA_HEAP": "512m",
}


def lintas(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINTAS_")}
    env.update(FAST_ENV)
    return subprocess.run(
        [sys.executable, "-m", "lintas.cli", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_up_status_down_cycle(tmp_path: Path) -> None:
    data_dir = tmp_path / "cycle"
    try:
        first = lintas(data_dir, "up")
        assert first.returncode == 0, first.stderr
        assert "kafka: ready" in first.stderr and "postgres: ready" in first.stderr
        assert "portal: created operator 'admin'" in first.stderr

        again = lintas(data_dir, "up")
        assert again.returncode == 0, again.stderr
        assert "kafka: already running" in again.stderr

        status = lintas(data_dir, "status", "--json")
        assert status.returncode == 0, status.stderr
        doc = json.loads(status.stdout)
        for key in ("kafka_bootstrap", "pg_dsn", "registry_url", "gateway_url", "portal_url"):
            assert key in doc
        sec = doc["kafka_security"]
        assert sec["mechanism"] == "SCRAM-SHA-512" and sec["username"] == "lintas"
        assert os.stat(sec["password_file"]).st_mode & 0o077 == 0, "password file is not private"
        assert doc["components"]["kafka"]["healthy"] and doc["components"]["postgres"]["healthy"]
        # The portal runs, and its first operator signs in with the password up wrote down.
        assert doc["components"]["portal"]["healthy"] and doc["portal_url"]
        password = (data_dir / "secrets" / "portal-admin.password").read_text().strip()
        with httpx.Client(base_url=doc["portal_url"]) as portal:
            assert sign_in(portal, "admin", password).status_code == 303
            assert portal.get("/api/dashboard").json()["panels"]["health"]["state"] == "ok"

        down = lintas(data_dir, "down")
        assert down.returncode == 0, down.stderr
        after = lintas(data_dir, "status", "--json")
        assert after.returncode == 1
        assert not json.loads(after.stdout)["components"]["kafka"]["running"]
    finally:
        lintas(data_dir, "down", "--purge")
    assert not data_dir.exists()


def test_status_reports_kafka_down(private_stack: LocalStack) -> None:
    state = private_stack.up()
    pid = state.components["kafka"].pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert wait_exit(pid, 10)
    rows, doc = private_stack.status()
    kafka = next(r for r in rows if r.name == "kafka")
    assert not kafka.running and not kafka.healthy
    assert doc["running"] is False
    assert doc["components"]["postgres"]["healthy"] is True


def _produce_and_count(private_stack: LocalStack, topic: str, produce: int) -> int:
    endpoints = resolve_endpoints(private_stack.settings)

    async def run() -> int:
        from aiokafka.admin import NewTopic

        if produce:
            admin = create_admin(endpoints.kafka)
            await admin.start()
            await admin.create_topics([NewTopic(topic, 2, 1)])
            await admin.close()
            producer = create_producer(endpoints.kafka)
            await producer.start()
            for i in range(produce):
                await producer.send(topic, key=str(i % 7).encode(), value=str(i).encode())
            await producer.flush()
            await producer.stop()
        consumer = create_consumer(endpoints.kafka, topic, group_id=None)
        await consumer.start()
        values: set[int] = set()
        for _ in range(20):
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                values.update(int(r.value) for r in records)
            if not batch and values:
                break
        await consumer.stop()
        return len(values)

    return asyncio.run(run())


def test_sigkill_kafka_then_up_recovers_the_data(private_stack: LocalStack) -> None:
    state = private_stack.up()
    assert _produce_and_count(private_stack, "recovery.check", 1000) == 1000
    pid = state.components["kafka"].pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert wait_exit(pid, 10)
    private_stack.up()
    assert _produce_and_count(private_stack, "recovery.check", 0) == 1000


def test_up_survives_stale_pids_and_a_taken_port(private_stack: LocalStack) -> None:
    state = private_stack.up()
    old_port = state.components["kafka"].port
    private_stack.down()
    # A reboot's leftovers: the recorded pids now belong to some other process (ours),
    # and the recorded Kafka port is taken by another program.
    state = StackState.load(private_stack.data_dir)
    assert state is not None
    for comp in state.components.values():
        comp.pid = os.getpid()
    state.save()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", old_port))
    blocker.listen()
    try:
        new_state = private_stack.up()
    finally:
        blocker.close()
    new_port = new_state.components["kafka"].port
    assert new_port != old_port
    rows, doc = private_stack.status()
    assert doc["kafka_bootstrap"] == f"127.0.0.1:{new_port}"
    assert all(r.healthy for r in rows)


def test_corrupt_state_file_is_a_clear_error(tmp_path: Path) -> None:
    data_dir = tmp_path / "corrupt"
    data_dir.mkdir()
    (data_dir / "stack.json").write_text("{not json")
    result = lintas(data_dir, "up")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "cannot be used" in result.stderr and "stack.json" in result.stderr


def test_foreign_files_in_kafka_storage_are_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "foreign"
    storage = data_dir / "kafka" / "data"
    storage.mkdir(parents=True)
    (storage / "something.log").write_text("not kafka")
    try:
        result = lintas(data_dir, "up")
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        assert "no meta.properties" in result.stderr
    finally:
        lintas(data_dir, "down", "--purge")


@pytest.mark.parametrize("missing", ["java", "mvn"])
def test_missing_jdk_or_maven_is_explained(tmp_path: Path, missing: str) -> None:
    # A PATH with every tool but the missing one, and an empty jar cache.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("java", "mvn"):
        if tool != missing:
            real = subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
            (bindir / tool).symlink_to(real)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINTAS_")}
    env.update(FAST_ENV)
    env["PATH"] = f"{bindir}:/usr/bin/pgonly-none"
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    data_dir = tmp_path / "nojdk"
    try:
        result = subprocess.run(
            [sys.executable, "-m", "lintas.cli", "--data-dir", str(data_dir), "up"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        expected = "Java" if missing == "java" else "Maven"
        assert expected in result.stderr and "apt-get install" in result.stderr
    finally:
        lintas(data_dir, "down", "--purge")

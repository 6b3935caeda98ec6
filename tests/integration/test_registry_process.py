"""``lintas registry`` as a real process against a fresh database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson

from lintas.endpoints import Endpoints
from lintas.schemas import load_catalog


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_registry_process_serves_and_round_trips(
    fresh_db: str, endpoints: Endpoints, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "LINTAS_PG_DSN": fresh_db,
        "LINTAS_KAFKA_BOOTSTRAP": endpoints.kafka.bootstrap,
        "LINTAS_KAFKA__USERNAME": endpoints.kafka.username,
        "LINTAS_KAFKA__PASSWORD": endpoints.kafka.password,
        "LINTAS_DATA_DIR": str(tmp_path / "data"),
    }
    log = (tmp_path / "registry.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "lintas.cli", "registry", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "registry.log").read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "registry not healthy after 30 s"
            time.sleep(0.1)

        kematian = load_catalog().get("dukcapil.kematian_dicatat.v1")
        registered = httpx.post(
            f"{url}/subjects/{kematian.subject}/versions",
            content=orjson.dumps({"schema": kematian.schema_str}),
            headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        )
        assert registered.status_code == 200, registered.text
        schema_id = registered.json()["id"]
        fetched = httpx.get(f"{url}/schemas/ids/{schema_id}")
        assert fetched.json() == {"schema": kematian.schema_str}
        latest = httpx.get(f"{url}/subjects/{kematian.subject}/versions/latest").json()
        assert latest["id"] == schema_id and latest["version"] == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()

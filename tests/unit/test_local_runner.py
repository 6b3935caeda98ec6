"""Logic of the local runner that does not need a running broker or database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lintas.deploy.local import StackState
from lintas.deploy.local._process import choose_port, process_alive, terminate
from lintas.deploy.local.kafka import KafkaNode
from lintas.exceptions import DataDirCorrupt
from lintas.postgres import redact_dsn


def _props(node: KafkaNode) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in node.config.read_text().splitlines() if "=" in line)
    return {k: v for k, v in pairs if not k.startswith("#")}


def test_broker_config_is_secure_by_default(tmp_path: Path) -> None:
    node = KafkaNode(tmp_path)
    node.render(port=19092, controller_port=19093, controller_password="c", platform_password="p")
    props = _props(node)
    assert props["auto.create.topics.enable"] == "false"
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert "User:lintas" in props["super.users"]
    # No listener without authentication, not even the controller's.
    assert "PLAINTEXT://" not in props["listeners"].replace("SASL_PLAINTEXT://", "")
    assert set(props["listener.security.protocol.map"].split(",")) == {
        "SASL_PLAINTEXT:SASL_PLAINTEXT",
        "CONTROLLER:SASL_PLAINTEXT",
    }
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert os.stat(node.config).st_mode & 0o077 == 0, "config holds passwords; must be private"


def test_fast_test_profile(tmp_path: Path) -> None:
    node = KafkaNode(tmp_path, fast_test_profile=True)
    node.render(port=1, controller_port=2, controller_password="c", platform_password="p")
    assert _props(node)["group.initial.rebalance.delay.ms"] == "0"


def test_choose_port_avoids_taken_ports() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        busy = sock.getsockname()[1]
        chosen = choose_port(busy, set())
        assert chosen != busy
    assert choose_port(0, {chosen}) != chosen


def test_stale_pid_is_not_taken_for_ours(tmp_path: Path) -> None:
    # Our own pid runs, but its command line lacks the component's marker.
    assert process_alive(os.getpid())
    assert not process_alive(os.getpid(), marker=str(tmp_path / "kafka" / "server.properties"))
    assert not process_alive(None)


def test_terminate_escalates_to_sigkill() -> None:
    stubborn = subprocess.Popen(
        [sys.executable, "-c", "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
         "print('ready', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    assert stubborn.stdout is not None and stubborn.stdout.readline() == b"ready\n"
    assert terminate(stubborn.pid, timeout=0.5) is True
    assert not process_alive(stubborn.pid)


def test_corrupt_state_file(tmp_path: Path) -> None:
    (tmp_path / "stack.json").write_text("[1, 2")
    with pytest.raises(DataDirCorrupt) as info:
        StackState.load(tmp_path)
    assert "stack.json" in str(info.value)


def test_redact_dsn() -> None:
    assert redact_dsn("postgresql://lintas:s3cret@h:5432/db") == "postgresql://lintas:***@h:5432/db"
    assert redact_dsn("postgresql://h/db") == "postgresql://h/db"


def test_maven_central_unreachable_is_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lintas.deploy.local.kafka import ensure_jars
    from lintas.exceptions import PrerequisiteMissing

    # A stand-in for mvn that fails the way Maven does when the network is down.
    fake = tmp_path / "bin" / "mvn"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\necho '[ERROR] Could not transfer artifact org.apache.kafka:kafka_2.13: "
        "Connection refused'\nexit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    with pytest.raises(PrerequisiteMissing) as info:
        ensure_jars(tmp_path / "cache")
    assert "Maven Central" in str(info.value) and "Connection refused" in str(info.value)
    assert not (tmp_path / "cache" / "kafka-4.3.1" / "libs").exists(), "half a cache was left"


def test_no_postgres_binaries_and_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    from lintas.deploy.local import postgres as pg_rt
    from lintas.exceptions import PrerequisiteMissing

    monkeypatch.setattr(pg_rt, "find_bindir", lambda: None)
    monkeypatch.setattr(pg_rt.os, "geteuid", lambda: 1000)
    with pytest.raises(PrerequisiteMissing) as info:
        pg_rt.ensure_binaries(progress=False)
    assert "apt-get install -y postgresql" in str(info.value)

"""Shared fixtures: one real broker and database per test run, fresh topics and databases.

Integration tests (under tests/integration, marked ``integration`` automatically) get the
broker and database from :func:`lintas.testing.start_services`; a service that cannot be
started fails the run loudly, it never skips. Unit tests need neither.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from lintas.endpoints import Endpoints
from lintas.kafka import KafkaConnection, create_admin
from lintas.testing import TestServices, start_services
from lintas.testing.services import fast_local_settings

ROOT = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if (ROOT / "integration") in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def scale() -> float:
    """``LINTAS_TEST_SCALE``: multiplies event counts (default 1)."""
    return float(os.environ.get("LINTAS_TEST_SCALE", "1"))


@pytest.fixture(scope="session")
def output_dir() -> Path:
    """Where tests leave artefacts (screenshots, reports): ``test-output/``."""
    path = Path(os.environ.get("LINTAS_TEST_OUTPUT", ROOT.parent / "test-output"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestServices]:
    """The session's Kafka and PostgreSQL (env addresses, testcontainers, or local runner)."""
    svc = start_services(tmp_path_factory.mktemp("stack"), progress=lambda m: print(m))
    try:
        with pytest.MonkeyPatch.context() as env:
            # Subprocesses and Settings() built inside tests find the session's services the
            # same way whether the harness started them or the environment named them.
            ep = svc.endpoints
            if svc.source != "env":
                _export_endpoints(env, ep)
            yield svc
    finally:
        svc.stop()


def _export_endpoints(env: pytest.MonkeyPatch, ep: Endpoints) -> None:
    env.setenv("LINTAS_KAFKA_BOOTSTRAP", ep.kafka.bootstrap)
    env.setenv("LINTAS_KAFKA__USERNAME", ep.kafka.username)
    env.setenv("LINTAS_KAFKA__PASSWORD", ep.kafka.password)
    env.setenv("LINTAS_KAFKA__SASL_MECHANISM", ep.kafka.sasl_mechanism)
    env.setenv("LINTAS_KAFKA__SECURITY_PROTOCOL", ep.kafka.security_protocol)
    env.setenv("LINTAS_PG_DSN", ep.pg_dsn)
    if ep.registry_url:
        env.setenv("LINTAS_REGISTRY_URL", ep.registry_url)


@pytest.fixture(scope="session")
def endpoints(services: TestServices) -> Endpoints:
    return services.endpoints


@pytest.fixture(scope="session")
def kafka_bootstrap(endpoints: Endpoints) -> str:
    return endpoints.kafka.bootstrap


@pytest.fixture(scope="session")
def kafka_conn(endpoints: Endpoints) -> KafkaConnection:
    return endpoints.kafka


@pytest.fixture(scope="session")
def pg_dsn(endpoints: Endpoints) -> str:
    return endpoints.pg_dsn


@pytest.fixture(scope="session")
def registry_url(services: TestServices, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's schema registry: the local stack's, or one started for the session."""
    if services.endpoints.registry_url:
        yield services.endpoints.registry_url
        return
    import subprocess
    import sys
    import time

    from lintas.deploy.local._process import free_port, http_ok

    port = free_port()
    env = {**os.environ, "LINTAS_PG_DSN": services.endpoints.pg_dsn}
    env["LINTAS_KAFKA_BOOTSTRAP"] = services.endpoints.kafka.bootstrap
    env["LINTAS_KAFKA__USERNAME"] = services.endpoints.kafka.username
    env["LINTAS_KAFKA__PASSWORD"] = services.endpoints.kafka.password
    proc = subprocess.Popen(
        [sys.executable, "-m", "lintas.cli", "registry", "--port", str(port)], env=env
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if http_ok(f"{url}/healthz", timeout=1):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("the schema registry did not start in 30 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@pytest_asyncio.fixture(loop_scope="session")
async def topic_factory(kafka_conn: KafkaConnection) -> AsyncIterator[Callable[..., Any]]:
    """``await topic_factory(partitions=3)`` creates a fresh topic and returns its name."""
    from aiokafka.admin import NewTopic

    admin = create_admin(kafka_conn)
    await admin.start()
    created: list[str] = []

    async def make(prefix: str = "test.", *, partitions: int = 3, **configs: str) -> str:
        name = _unique(prefix)
        await admin.create_topics(
            [NewTopic(name, partitions, 1, topic_configs=configs)], validate_only=False
        )
        created.append(name)
        return name

    try:
        yield make
    finally:
        if created:
            await admin.delete_topics(created)
        await admin.close()


@pytest_asyncio.fixture(loop_scope="session")
async def fresh_db(pg_dsn: str) -> AsyncIterator[str]:
    """A new, migrated database for one test; its DSN. Dropped afterwards."""
    from lintas.migrate import migrate
    from lintas.postgres import connect

    name = _unique("lintas_test_")
    admin = await connect(pg_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = pg_dsn.rpartition("/")
    dsn = f"{base}/{name}"
    try:
        await migrate(dsn)
        yield dsn
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
def private_stack(tmp_path: Path) -> Iterator[Any]:
    """A local stack of its own (data directory, ports) for tests that stop or kill things."""
    from lintas.deploy.local import LocalStack

    settings = fast_local_settings(tmp_path / "private")
    stack = LocalStack(settings, progress=lambda m: print(m))
    try:
        yield stack
    finally:
        stack.down(purge=True)

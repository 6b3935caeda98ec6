"""Start (or find) the Kafka broker and PostgreSQL that integration tests run against."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lintas.endpoints import Endpoints, resolve_endpoints
from lintas.kafka import KafkaConnection
from lintas.settings import KafkaSettings, LocalStackSettings, Settings

__all__ = ["TestServices", "docker_available", "fast_local_settings", "start_services"]


@dataclass(kw_only=True)
class TestServices:
    """The broker and database of one test session, and how they were obtained."""

    __test__ = False  # not a test class, despite the name

    source: str
    """``env``, ``testcontainers`` or ``local``."""
    settings: Settings
    endpoints: Endpoints
    stop: Callable[[], None] = field(default=lambda: None)


def fast_local_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings for a private local stack: free ports, the fast test profile."""
    local = LocalStackSettings(
        kafka_port=0,
        kafka_controller_port=0,
        kafka_tls_port=0,
        pg_port=0,
        registry_port=0,
        gateway_port=0,
        portal_port=0,
        fast_test_profile=True,
        kafka_heap="512m",
    )
    # Addresses from the environment (a shared stack's) must not leak into a private stack.
    isolated: dict[str, object] = {
        "kafka_bootstrap": None,
        "pg_dsn": None,
        "registry_url": None,
        "kafka": KafkaSettings(),
    }
    return Settings(data_dir=data_dir, local=local, **{**isolated, **overrides})  # type: ignore[arg-type]


def docker_available() -> bool:
    """True when a Docker engine answers (the client alone is not enough)."""
    if os.environ.get("LINTAS_TEST_NO_DOCKER"):
        return False
    try:
        import docker  # installed with testcontainers

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:  # no daemon, no socket, no permission: all mean "not available"
        return False


def _from_env() -> TestServices:
    settings = Settings()
    return TestServices(source="env", settings=settings, endpoints=resolve_endpoints(settings))


def _from_testcontainers(data_dir: Path) -> TestServices:  # pragma: no cover - needs Docker
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs
    from testcontainers.postgres import PostgresContainer

    pg = PostgresContainer("postgres:16", username="lintas", password="lintas", dbname="lintas")
    pg.with_command("postgres -c wal_level=logical -c timezone=UTC -c max_connections=300")
    pg.start()
    password = secrets.token_urlsafe(16)
    # The image has no SCRAM bootstrap, so the container broker uses SASL/PLAIN with a
    # static platform user: still an authenticated listener, with the authorizer on.
    jaas = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="lintas" password="{password}" user_lintas="{password}";'
    )
    kafka = (
        DockerContainer("apache/kafka:4.1.1")
        .with_exposed_ports(9092)
        .with_env("KAFKA_NODE_ID", "1")
        .with_env("KAFKA_PROCESS_ROLES", "broker,controller")
        .with_env("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9093")
        .with_env("KAFKA_LISTENERS", "SASL_PLAINTEXT://0.0.0.0:9092,CONTROLLER://localhost:9093")
        .with_env(
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
            "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
        )
        .with_env("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        .with_env("KAFKA_INTER_BROKER_LISTENER_NAME", "SASL_PLAINTEXT")
        .with_env("KAFKA_SASL_ENABLED_MECHANISMS", "PLAIN")
        .with_env("KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL", "PLAIN")
        .with_env("KAFKA_SASL_MECHANISM_CONTROLLER_PROTOCOL", "PLAIN")
        .with_env("KAFKA_LISTENER_NAME_SASL_PLAINTEXT_PLAIN_SASL_JAAS_CONFIG", jaas)
        .with_env("KAFKA_LISTENER_NAME_CONTROLLER_PLAIN_SASL_JAAS_CONFIG", jaas)
        .with_env(
            "KAFKA_AUTHORIZER_CLASS_NAME", "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
        )
        .with_env("KAFKA_SUPER_USERS", "User:lintas")
        .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
        .with_env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        .with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
    )
    kafka.start()
    host, port = kafka.get_container_host_ip(), kafka.get_exposed_port(9092)
    kafka.with_env("KAFKA_ADVERTISED_LISTENERS", f"SASL_PLAINTEXT://{host}:{port}")
    wait_for_logs(kafka, "Kafka Server started", timeout=120)
    conn = KafkaConnection(
        bootstrap=f"{host}:{port}", username="lintas", password=password, sasl_mechanism="PLAIN"
    )
    dsn = pg.get_connection_url(driver=None)
    settings = Settings(data_dir=data_dir, kafka_bootstrap=conn.bootstrap, pg_dsn=dsn)
    endpoints = Endpoints(kafka=conn, kafka_password_file=None, pg_dsn=dsn)

    def stop() -> None:
        with contextlib.suppress(Exception):
            kafka.stop()
        with contextlib.suppress(Exception):
            pg.stop()

    return TestServices(source="testcontainers", settings=settings, endpoints=endpoints, stop=stop)


def _from_local_runner(data_dir: Path, progress: Callable[[str], None]) -> TestServices:
    from lintas.deploy.local import LocalStack

    settings = fast_local_settings(data_dir)
    # Only the registry: tests start the workers, sinks and gateways they test themselves.
    stack = LocalStack(settings, progress=progress, services=("registry",))
    try:
        stack.up()
    except BaseException:
        stack.down(purge=True)
        raise

    def stop() -> None:
        stack.down(purge=True)

    return TestServices(
        source="local", settings=settings, endpoints=resolve_endpoints(settings), stop=stop
    )


def start_services(data_dir: Path, progress: Callable[[str], None] = print) -> TestServices:
    """The broker and database for a test session, by the harness's order of choice."""
    if os.environ.get("LINTAS_KAFKA_BOOTSTRAP") or os.environ.get("LINTAS_PG_DSN"):
        return _from_env()
    if docker_available():
        return _from_testcontainers(data_dir)
    return _from_local_runner(data_dir, progress)

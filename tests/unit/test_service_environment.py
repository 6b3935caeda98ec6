"""The environment `lintas up` gives each service: its own principal, the stack's addresses."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lintas.deploy.local.services import SERVICES, KafkaLogin, service_environment
from lintas.security import ServiceRole
from lintas.settings import KafkaSecurityProtocol, KafkaSettings, Settings

LOGIN = KafkaLogin(user="svc-sink", password_file=Path("/data/secrets/kafka-users/svc-sink.pw"))
# What a shell that points at another stack, with the super-user's login, holds.
CALLER = {
    "PATH": "/usr/bin",
    "LINTAS_KAFKA_BOOTSTRAP": "10.0.0.9:9092",
    "LINTAS_PG_DSN": "postgresql://lintas:x@10.0.0.9:5432/lintas",
    "LINTAS_REGISTRY_URL": "http://10.0.0.9:8081",
    "LINTAS_KAFKA__USERNAME": "lintas",
    "LINTAS_KAFKA__PASSWORD_FILE": "/other/kafka-platform.password",
    "lintas_kafka__password": "super-user-secret",
    "LINTAS_KAFKA": '{"username": "lintas"}',
    "LINTAS_DATA_DIR": "/other",
    "LINTAS_STREAMS__TOPIC_REFRESH_S": "2",
}


def _stack_settings(**overrides: object) -> Settings:
    """A private stack's settings: no address, whatever the environment says."""
    isolated: dict[str, object] = {
        "data_dir": Path("/data"),
        "kafka_bootstrap": None,
        "pg_dsn": None,
        "registry_url": None,
        "kafka": KafkaSettings(),
    }
    return Settings(**{**isolated, **overrides})  # type: ignore[arg-type]


def test_a_service_logs_in_as_its_principal_not_as_the_callers() -> None:
    env = service_environment(CALLER, _stack_settings(), data_dir=Path("/data"), login=LOGIN)
    kafka = {k: v for k, v in env.items() if k.upper().startswith("LINTAS_KAFKA")}
    assert kafka == {
        "LINTAS_KAFKA__USERNAME": "svc-sink",
        "LINTAS_KAFKA__PASSWORD_FILE": "/data/secrets/kafka-users/svc-sink.pw",
    }
    # The stack's own addresses come from its state file, not from the caller's shell.
    assert "LINTAS_PG_DSN" not in env and "LINTAS_REGISTRY_URL" not in env
    assert env["LINTAS_DATA_DIR"] == "/data"
    # Everything else passes through.
    assert env["PATH"] == "/usr/bin" and env["LINTAS_STREAMS__TOPIC_REFRESH_S"] == "2"
    assert "super-user-secret" not in env.values()


def test_a_service_without_kafka_gets_no_credential() -> None:
    env = service_environment(CALLER, _stack_settings(), data_dir=Path("/data"), login=None)
    assert not [k for k in env if k.upper().startswith("LINTAS_KAFKA")]


def test_the_stacks_addresses_and_kafka_options_are_passed_on() -> None:
    settings = _stack_settings(
        kafka_bootstrap="kafka-1:9093",
        pg_dsn="postgresql://lintas@db:5432/lintas",
        kafka=KafkaSettings(
            security_protocol=KafkaSecurityProtocol.SASL_SSL,
            ssl_cafile=Path("/etc/ca.crt"),
            request_timeout_ms=5000,
            username="operator",
            password_file=Path("/root/admin.password"),
        ),
    )
    env = service_environment({}, settings, data_dir=Path("/data"), login=LOGIN)
    assert env["LINTAS_KAFKA_BOOTSTRAP"] == "kafka-1:9093"
    assert env["LINTAS_PG_DSN"] == "postgresql://lintas@db:5432/lintas"
    assert env["LINTAS_KAFKA__SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["LINTAS_KAFKA__SSL_CAFILE"] == "/etc/ca.crt"
    assert env["LINTAS_KAFKA__REQUEST_TIMEOUT_MS"] == "5000"
    # The operator's own login stays with the operator.
    assert env["LINTAS_KAFKA__USERNAME"] == "svc-sink"
    assert "/root/admin.password" not in env.values()
    # Defaults are left to the service's own settings.
    assert "LINTAS_KAFKA__PARTITIONS" not in env


def test_the_environment_reads_back_as_the_stacks_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    stack = _stack_settings(
        kafka=KafkaSettings(security_protocol=KafkaSecurityProtocol.SASL_SSL, partitions=6)
    )
    env = service_environment(CALLER, stack, data_dir=Path("/data"), login=LOGIN)
    for name in [k for k in os.environ if k.upper().startswith("LINTAS_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    seen = Settings()
    assert seen.data_dir == Path("/data")
    assert seen.kafka_bootstrap is None and seen.pg_dsn is None
    assert seen.kafka.username == "svc-sink" and seen.kafka.password is None
    assert seen.kafka.password_file == LOGIN.password_file
    assert seen.kafka.security_protocol is KafkaSecurityProtocol.SASL_SSL
    assert seen.kafka.partitions == 6


def test_every_kafka_service_has_a_principal_of_its_own() -> None:
    roles = {s.name: s.kafka_role for s in SERVICES}
    assert roles.pop("registry") is None, "the registry never connects to Kafka"
    assert all(role is not None and ServiceRole(role) for role in roles.values())
    assert len(set(roles.values())) == len(roles), "no two services share a principal"

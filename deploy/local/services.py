"""Lintas's own services in the local stack (registry, gateway, portal, workers, sinks).

Each is a ``lintas <role>`` process started by ``lintas up``. A component adds itself to
:data:`SERVICES` when it lands; the runner starts them in order after Kafka and PostgreSQL.

Each service that talks to Kafka logs in as its own principal ``svc-<role>``, with the
least-privilege ACLs of :mod:`lintas.security.services` and the password ``lintas up``
(``lintas security sync``) wrote to an owner-only file. The platform's super-user stays with
the CLI and the stack's own admin tasks (topics, migrations, ACLs and credentials).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from lintas.settings import KafkaSettings, Settings

__all__ = ["SERVICES", "KafkaLogin", "ServiceSpec", "service_environment"]


@dataclass(frozen=True, kw_only=True)
class ServiceSpec:
    """How the local runner starts and checks one Lintas service."""

    name: str
    """Component name, as in ``lintas logs NAME``."""
    command: tuple[str, ...]
    """Arguments after ``python -m lintas.cli``; ``{port}`` is replaced by its port."""
    port_setting: str | None = None
    """The ``LocalStackSettings`` field holding its preferred port, if it listens."""
    url_key: str | None = None
    """The key under which ``lintas status --json`` prints its URL."""
    health_path: str = "/healthz"
    kafka_role: str | None = None
    """The :class:`lintas.security.ServiceRole` whose principal (``svc-<role>``) it logs in
    as; None for a service that never connects to Kafka. A plain string so that reading the
    stack's state does not import the security package."""


@dataclass(frozen=True, kw_only=True)
class KafkaLogin:
    """A service's Kafka credential: its SCRAM user and the file holding its password."""

    user: str
    password_file: Path


SERVICES: tuple[ServiceSpec, ...] = (
    # No Kafka: the registry keeps schemas in PostgreSQL only.
    ServiceSpec(
        name="registry",
        command=("registry", "--port", "{port}"),
        port_setting="registry_port",
        url_key="registry_url",
    ),
    ServiceSpec(
        name="gateway",
        command=("gateway", "--port", "{port}"),
        port_setting="gateway_port",
        url_key="gateway_url",
        kafka_role="gateway",
    ),
    # No port: a stream worker reads opd.* and writes lintas.canonical.*, lintas.dlq and
    # lintas.metrics. It needs the registry, which starts before it.
    ServiceSpec(name="worker", command=("worker",), kafka_role="worker"),
    # No port: the store sink reads lintas.canonical.* into PostgreSQL; at start it creates
    # the typed tables and analytics views. It needs the registry, which starts before it.
    ServiceSpec(name="sink", command=("sink",), kafka_role="sink"),
    ServiceSpec(
        name="portal",
        command=("portal", "--port", "{port}"),
        port_setting="portal_port",
        url_key="portal_url",
        kafka_role="portal",
    ),
    # No port: it only reads Kafka and PostgreSQL and POSTs out. It needs the registry,
    # which starts before it.
    ServiceSpec(name="deliver", command=("deliver",), kafka_role="deliver"),
)

# Where and as whom a service connects is the stack's decision, not the calling shell's:
# an address or credential inherited from the environment (a shared test stack's, an
# operator's admin login) would point a service at another broker or give it the
# super-user's rights. These variables are dropped and set again from the stack's settings.
_FLAT = {
    "LINTAS_KAFKA_BOOTSTRAP": "kafka_bootstrap",
    "LINTAS_PG_DSN": "pg_dsn",
    "LINTAS_REGISTRY_URL": "registry_url",
}
_KAFKA_GROUP = "LINTAS_KAFKA"
_CREDENTIAL_FIELDS = {"username", "password", "password_file"}


def _stack_owned(name: str) -> bool:
    # pydantic-settings matches names case-insensitively, and takes a whole group as JSON.
    upper = name.upper()
    return (
        upper in _FLAT
        or upper == "LINTAS_DATA_DIR"
        or upper == _KAFKA_GROUP
        or upper.startswith(_KAFKA_GROUP + "__")
    )


def _env_value(value: object) -> str:
    return str(value.value) if isinstance(value, Enum) else str(value)


def service_environment(
    base: Mapping[str, str], settings: Settings, *, data_dir: Path, login: KafkaLogin | None
) -> dict[str, str]:
    """The environment of one service process of the local stack.

    ``base`` (the caller's environment) passes through, except the addresses, the data
    directory and the Kafka group, which come from ``settings`` (the stack's): the service
    reaches the same broker, database and registry as the stack, with the same Kafka
    options, and logs in as ``login`` instead of the platform's super-user.

    Args:
        base: the environment to start from (``os.environ``).
        settings: the stack's settings.
        data_dir: the stack's data directory (resolved).
        login: the service's own Kafka credential; None for a service without Kafka,
            which then gets no Kafka credential at all.

    Returns:
        The variables for the child process.
    """
    env = {k: v for k, v in base.items() if not _stack_owned(k)}
    env["LINTAS_DATA_DIR"] = str(data_dir)
    for var, field in _FLAT.items():
        value = getattr(settings, field)
        if value is not None:
            env[var] = str(value)
    for field, info in KafkaSettings.model_fields.items():
        value = getattr(settings.kafka, field)
        if field not in _CREDENTIAL_FIELDS and value is not None and value != info.default:
            env[f"{_KAFKA_GROUP}__{field.upper()}"] = _env_value(value)
    if login is not None:
        env[f"{_KAFKA_GROUP}__USERNAME"] = login.user
        env[f"{_KAFKA_GROUP}__PASSWORD_FILE"] = str(login.password_file)
    return env

"""Lintas's own services in the local stack (registry, gateway, portal, workers, sinks).

Each is a ``lintas <role>`` process started by ``lintas up``. A component adds itself to
:data:`SERVICES` when it lands; the runner starts them in order after Kafka and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass


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


SERVICES: tuple[ServiceSpec, ...] = (
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
    ),
    # No port: a stream worker reads opd.* and writes lintas.canonical.*, lintas.dlq and
    # lintas.metrics. It needs the registry, which starts before it.
    ServiceSpec(name="worker", command=("worker",)),
    # No port: the store sink reads lintas.canonical.* into PostgreSQL; at start it creates
    # the typed tables and analytics views. It needs the registry, which starts before it.
    ServiceSpec(name="sink", command=("sink",)),
    ServiceSpec(
        name="portal",
        command=("portal", "--port", "{port}"),
        port_setting="portal_port",
        url_key="portal_url",
    ),
    # No port: it only reads Kafka and PostgreSQL and POSTs out. It needs the registry,
    # which starts before it.
    ServiceSpec(name="deliver", command=("deliver",)),
)

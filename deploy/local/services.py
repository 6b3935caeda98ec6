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
)

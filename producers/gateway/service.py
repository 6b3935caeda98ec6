"""Run the gateway: ``serve`` for ``lintas gateway``, :class:`GatewayServer` in a loop.

``lintas gateway`` (started by ``lintas up``) calls :func:`serve`; tests and the benchmark
that want a gateway inside their own event loop use :class:`GatewayServer`::

    async with GatewayServer(gateway, port=0) as server:
        httpx.post(f"{server.url}/v1/events:batch", ...)
"""

from __future__ import annotations

import logging

import uvicorn

from lintas.http_server import EmbeddedServer
from lintas.settings import Settings

from .app import create_app
from .runtime import Gateway

__all__ = ["GatewayServer", "gateway_from_settings", "serve"]

log = logging.getLogger("lintas.gateway")


def gateway_from_settings(settings: Settings) -> Gateway:
    """A gateway on the configured (or the local stack's) Kafka, database and registry.

    Raises:
        StackError: no address is configured and no local stack runs.
        ConfigurationError: a credential cannot be read.
    """
    from lintas.endpoints import resolve_endpoints

    endpoints = resolve_endpoints(settings)
    return Gateway(
        settings,
        kafka=endpoints.kafka,
        pg_dsn=endpoints.pg_dsn,
        registry=endpoints.registry_url,
    )


class GatewayServer(EmbeddedServer):
    """A gateway served by uvicorn inside the running event loop.

    Args:
        gateway: the gateway (started and stopped by the server's lifespan).
        host: interface to listen on.
        port: port to listen on; 0 picks a free one (see :attr:`port` once started).
    """

    def __init__(self, gateway: Gateway, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.gateway = gateway
        # The gateway bounds request time itself; keep-alive helps busy clients.
        super().__init__(
            create_app(gateway), name="gateway", host=host, port=port, timeout_keep_alive=30
        )


async def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve the gateway until interrupted (SIGINT/SIGTERM stop it gracefully: requests in
    progress finish, the producer flushes and spools what Kafka has not acknowledged)."""
    gateway = gateway_from_settings(settings)
    config = uvicorn.Config(
        create_app(gateway),
        host=host,
        port=port,
        lifespan="on",
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=int(settings.gateway.request_timeout_s),
    )
    server = uvicorn.Server(config)
    log.info("gateway listening on http://%s:%s", host, port)
    await server.serve()
    if not server.started:
        from .exceptions import GatewayError

        raise GatewayError(
            f"The gateway could not start on {host}:{port}.",
            hint="Its log above says why (port taken, Kafka credentials, database).",
        )

"""Run the gateway: ``serve`` for ``lintas gateway``, :class:`GatewayServer` in a loop.

``lintas gateway`` (started by ``lintas up``) calls :func:`serve`; tests and the benchmark
that want a gateway inside their own event loop use :class:`GatewayServer`::

    async with GatewayServer(gateway, port=0) as server:
        httpx.post(f"{server.url}/v1/events:batch", ...)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType

import uvicorn

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


class GatewayServer:
    """A gateway served by uvicorn inside the running event loop.

    Args:
        gateway: the gateway (started and stopped by the server's lifespan).
        host: interface to listen on.
        port: port to listen on; 0 picks a free one (see :attr:`port` once started).
    """

    def __init__(self, gateway: Gateway, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.gateway = gateway
        self.host = host
        self.port = port
        config = uvicorn.Config(
            create_app(gateway),
            host=host,
            port=port,
            log_level="warning",
            lifespan="on",
            access_log=False,
            # The gateway bounds request time itself; keep-alive helps busy clients.
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Start serving; returns once the server listens.

        Raises:
            RuntimeError: the server stopped during start-up (its error is logged).
        """
        self._task = asyncio.create_task(self._server.serve(), name="gateway-server")
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the gateway server stopped during start-up")
            await asyncio.sleep(0.02)
        sockets = self._server.servers[0].sockets if self._server.servers else []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop serving and stop the gateway (idempotent)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def __aenter__(self) -> GatewayServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


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

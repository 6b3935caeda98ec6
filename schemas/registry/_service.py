"""Run the registry as an HTTP service: the ASGI app, an in-process server, ``serve``.

``lintas registry`` calls :func:`serve`; tests and tools that want a registry inside their
own event loop use :class:`RegistryServer`::

    async with RegistryServer(dsn, port=0) as server:
        client = SchemaRegistryClient(server.url)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType

import uvicorn
from starlette.applications import Starlette

from ._api import create_api
from ._registry import Registry
from ._store import RegistryStore
from .exceptions import RegistryError

__all__ = ["RegistryServer", "create_app", "serve"]

log = logging.getLogger("lintas.schemas.registry")


def create_app(dsn: str, *, pool_size: int = 10) -> Starlette:
    """The registry as an ASGI application over the PostgreSQL database at ``dsn``.

    The database pool opens with the application's lifespan, so run it under a server
    that sends lifespan events (uvicorn does).

    Args:
        dsn: a migrated Lintas database (``lintas migrate``).
        pool_size: most database connections held open.
    """
    return create_api(Registry(RegistryStore(dsn, pool_size=pool_size)))


class RegistryServer:
    """A registry served by uvicorn inside the running event loop.

    Args:
        dsn: a migrated Lintas database.
        host: interface to listen on.
        port: port to listen on; 0 picks a free one (see :attr:`port` once started).
    """

    def __init__(self, dsn: str, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._config = uvicorn.Config(
            create_app(dsn),
            host=host,
            port=port,
            log_level="warning",
            lifespan="on",
            access_log=False,
        )
        self._server = uvicorn.Server(self._config)
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
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()  # re-raise the start-up error, if any
                raise RuntimeError("the registry server stopped during start-up")
            await asyncio.sleep(0.02)
        sockets = self._server.servers[0].sockets if self._server.servers else []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop serving and close the database pool (idempotent)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def __aenter__(self) -> RegistryServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def serve(dsn: str, *, host: str = "127.0.0.1", port: int = 8081) -> None:
    """Serve the registry until interrupted (SIGINT/SIGTERM stop it gracefully)."""
    config = uvicorn.Config(
        create_app(dsn), host=host, port=port, lifespan="on", log_level="info", access_log=False
    )
    server = uvicorn.Server(config)
    log.info("schema registry listening on http://%s:%s", host, port)
    await server.serve()
    if not server.started:
        raise RegistryError(
            f"The schema registry could not start on {host}:{port}.",
            hint="Its log above says why (database unreachable, tables missing, port taken).",
        )

"""Serve an ASGI app with uvicorn inside the running event loop.

The registry, the gateway and the portal each run as their own process (``serve``), and
tests or benchmarks embed them with an :class:`EmbeddedServer` subclass::

    async with EmbeddedServer(app, name="registry", port=0) as server:
        httpx.get(f"{server.url}/subjects")
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Any, Self

import uvicorn

__all__ = ["EmbeddedServer"]


class EmbeddedServer:
    """An ASGI app served by uvicorn inside the running event loop.

    Args:
        app: the ASGI application (its lifespan runs with the server).
        name: what the server is, for errors (``registry``, ``gateway``).
        host: interface to listen on.
        port: port to listen on; 0 picks a free one (see :attr:`port` once started).
        options: further ``uvicorn.Config`` options.
    """

    def __init__(
        self, app: Any, *, name: str, host: str = "127.0.0.1", port: int = 0, **options: Any
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            **{"log_level": "warning", "lifespan": "on", "access_log": False, **options},
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
        self._task = asyncio.create_task(self._server.serve(), name=f"{self.name}-server")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # re-raise the start-up error, if any
                raise RuntimeError(f"the {self.name} server stopped during start-up")
            await asyncio.sleep(0.02)
        sockets = self._server.servers[0].sockets if self._server.servers else []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop serving; the app's lifespan shutdown runs (idempotent)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

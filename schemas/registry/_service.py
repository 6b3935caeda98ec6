"""Run the registry as an HTTP service: the ASGI app, an in-process server, ``serve``.

``lintas registry`` calls :func:`serve`; tests and tools that want a registry inside their
own event loop use :class:`RegistryServer`::

    async with RegistryServer(dsn, port=0) as server:
        client = SchemaRegistryClient(server.url)
"""

from __future__ import annotations

import logging

import uvicorn
from starlette.applications import Starlette

from lintas.http_server import EmbeddedServer

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


class RegistryServer(EmbeddedServer):
    """A registry served by uvicorn inside the running event loop.

    Args:
        dsn: a migrated Lintas database.
        host: interface to listen on.
        port: port to listen on; 0 picks a free one (see :attr:`port` once started).
    """

    def __init__(self, dsn: str, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(create_app(dsn), name="registry", host=host, port=port)


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

"""The portal as an ASGI application, and how to serve it.

Usage::

    app = create_app(PortalConfig.from_settings(settings))      # any ASGI server
    await serve(PortalConfig.from_settings(settings), port=8000)  # what `lintas portal` does

The database pool, the directory and the dashboard's Kafka readers open with the
application's lifespan, so run it under a server that sends lifespan events (uvicorn does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lintas.audit import AuditLog, import_periodically, pgaudit_log_dir
from lintas.directory import Directory
from lintas.kafka import KafkaConnection
from lintas.postgres import create_pool
from lintas.settings import Settings

from . import (
    _pages_apps,
    _pages_audit,
    _pages_auth,
    _pages_catalog,
    _pages_dashboard,
    _pages_dlq,
    _pages_subscriptions,
)
from ._web import PortalState, make_templates, render, state_of, translator
from .auth import SignInThrottle, current_user
from .data import Dashboard
from .exceptions import CsrfRejected, Forbidden, PortalError
from .users import PortalUsers

__all__ = ["PortalConfig", "create_app", "serve", "session_secret"]

log = logging.getLogger("lintas.portal")

SESSION_COOKIE = "lintas_portal"

# No inline script or style anywhere, so the policy can forbid both: an injected tag would
# not run even if a template forgot to escape something.
_SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


def session_secret(path: Path) -> str:
    """The key that signs session cookies, created (owner-only) on first use."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another portal process made it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


@dataclass(frozen=True, kw_only=True)
class PortalConfig:
    """Where the portal's sources are, resolved once at the entry point."""

    settings: Settings
    pg_dsn: str
    kafka: KafkaConnection | None
    registry_url: str | None = None
    gateway_url: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> PortalConfig:
        """Resolve the addresses from the settings (or the local stack's state).

        Raises:
            StackError: nothing is configured and no local stack runs.
        """
        from lintas.endpoints import resolve_endpoints

        endpoints = resolve_endpoints(settings)
        return cls(
            settings=settings,
            pg_dsn=endpoints.pg_dsn,
            kafka=endpoints.kafka,
            registry_url=endpoints.registry_url,
            gateway_url=endpoints.gateway_url,
        )

    def secret_path(self) -> Path:
        return self.settings.portal.session_secret_file or (
            self.settings.data_dir / "secrets" / "portal-session.key"
        )


class _SecurityHeaders:
    """Adds the security headers to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


async def _error_page(request: Request, code: int, message: str | None = None) -> Response:
    state = state_of(request)
    user = await current_user(request, state.users)
    return render(
        request, "error.html", t=translator(request), user=user, status=code, code=code,
        message=message,
    )  # fmt: skip


async def _forbidden(request: Request, exc: Exception) -> Response:
    key = "error.csrf" if isinstance(exc, CsrfRejected) else "error.forbidden"
    return await _error_page(request, 403, translator(request)(key))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return await _error_page(request, exc.status_code)


def create_app(config: PortalConfig) -> Starlette:
    """The portal over the sources in ``config``."""
    settings = config.settings
    publish = settings.portal.directory_topic

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = await create_pool(config.pg_dsn, application_name="lintas-portal", max_size=5)
        directory = await Directory.open(
            settings,
            pg_dsn=config.pg_dsn,
            kafka=config.kafka,
            publish=config.kafka is not None,
            topic=publish,
        )
        dashboard = Dashboard(
            directory=directory,
            pool=pool,
            kafka=config.kafka,
            registry_url=config.registry_url,
            zone=settings.display_zone,
            window_days=settings.directory.integrated_window_days,
            metrics_topic=settings.portal.metrics_topic,
            dlq_topic=settings.portal.dlq_topic,
        )
        pgaudit_dir = pgaudit_log_dir(settings.audit.pgaudit_log_dir, settings.data_dir)
        app.state.portal = PortalState(
            settings=settings,
            pool=pool,
            users=PortalUsers(pool),
            directory=directory,
            dashboard=dashboard,
            registry_url=config.registry_url,
            gateway_url=config.gateway_url,
            kafka=config.kafka,
            templates=make_templates(),
            throttle=SignInThrottle(),
            audit=AuditLog(pool=pool),
            pgaudit_dir=pgaudit_dir,
        )
        await dashboard.start()
        importing = asyncio.create_task(
            import_periodically(pool, pgaudit_dir, settings.audit.import_interval_s),
            name="pgaudit-import",
        )
        try:
            yield
        finally:
            importing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await importing
            await dashboard.stop()
            await directory.close()
            await pool.close()

    routes = [
        *_pages_auth.routes,
        *_pages_dashboard.routes,
        *_pages_catalog.routes,
        *_pages_apps.routes,
        *_pages_subscriptions.routes,
        *_pages_dlq.routes,
        *_pages_audit.routes,
        Mount("/static", StaticFiles(packages=[("lintas.portal", "static")]), name="static"),
    ]
    middleware = [
        Middleware(_SecurityHeaders),
        Middleware(
            SessionMiddleware,
            secret_key=session_secret(config.secret_path()),
            session_cookie=SESSION_COOKIE,
            max_age=settings.portal.session_max_age_s,
            same_site="lax",
            https_only=settings.portal.secure_cookies,
        ),
    ]
    return Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={
            Forbidden: _forbidden,
            CsrfRejected: _forbidden,
            HTTPException: _http_error,
        },
    )


async def serve(config: PortalConfig, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the portal until interrupted (SIGINT/SIGTERM stop it gracefully).

    Raises:
        PortalError: the server could not start (its log says why).
    """
    app = create_app(config)
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, lifespan="on", log_level="info", access_log=False)
    )
    log.info("portal listening on http://%s:%s", host, port)
    await server.serve()
    if not server.started:
        raise PortalError(
            f"The portal could not start on {host}:{port}.",
            hint="Its log above says why (database unreachable, migrations missing, port taken).",
        )

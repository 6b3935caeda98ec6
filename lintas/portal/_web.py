"""What every page handler shares: the portal's state, the signed-in user, rendering."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from lintas.audit import AuditLog, acting_as
from lintas.directory import AlreadyExists, Directory, DirectoryError, InvalidEntry, Problem
from lintas.kafka import KafkaConnection
from lintas.settings import Settings

from .auth import CSRF_FIELD, SignInThrottle, csrf_token, current_user, require_operator
from .data import Dashboard
from .i18n import LANGUAGES, Translator
from .users import PortalUser, PortalUsers

__all__ = [
    "Page",
    "PortalState",
    "make_templates",
    "page",
    "problems_of",
    "render",
    "state_of",
    "translator",
]

LANG_KEY = "lang"


@dataclass(kw_only=True)
class PortalState:
    """Everything the handlers use, opened by the application's lifespan."""

    settings: Settings
    pool: Any
    users: PortalUsers
    directory: Directory
    dashboard: Dashboard
    registry_url: str | None
    gateway_url: str | None
    kafka: KafkaConnection | None
    templates: Jinja2Templates
    throttle: SignInThrottle
    audit: AuditLog
    pgaudit_dir: Path | None = None
    """Where the database's jsonlog is, when this portal can read it (pgaudit's records)."""


def make_templates() -> Jinja2Templates:
    env = Environment(
        loader=PackageLoader("lintas.portal", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return Jinja2Templates(env=env)


def state_of(request: Request) -> PortalState:
    state: PortalState = request.app.state.portal
    return state


def translator(request: Request) -> Translator:
    settings = state_of(request).settings
    lang = request.session.get(LANG_KEY)
    if lang not in LANGUAGES:
        lang = settings.portal.default_language
    return Translator(str(lang), settings.display_zone)


@dataclass(frozen=True, kw_only=True)
class Page:
    """One request as a page handler sees it."""

    request: Request
    state: PortalState
    user: PortalUser
    t: Translator

    @property
    def directory(self) -> Directory:
        return self.state.directory


def render(
    request: Request,
    template: str,
    *,
    t: Translator,
    user: PortalUser | None = None,
    status: int = 200,
    no_store: bool = False,
    **context: Any,
) -> HTMLResponse:
    """Render a template with what every page needs (translator, user, CSRF token)."""
    response = state_of(request).templates.TemplateResponse(
        request,
        template,
        {
            "t": t,
            "lang": t.lang,
            "languages": LANGUAGES,
            "user": user,
            "csrf_field": CSRF_FIELD,
            "csrf_token": csrf_token(request),
            **context,
        },
        status_code=status,
    )
    if no_store:
        # A page showing a key once must not be kept by the browser or a proxy.
        response.headers["Cache-Control"] = "no-store"
    return response


Handler = Callable[[Page], Awaitable[Response]]


def page(*, operator: str | None = None, api: bool = False) -> Callable[[Handler], Any]:
    """Turn ``handler(page)`` into an endpoint that needs a signed-in user.

    Args:
        operator: the action, when only operators may do it (others get 403).
        api: answer 401 JSON instead of redirecting to the sign-in page.
    """

    def decorate(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            state = state_of(request)
            user = await current_user(request, state.users)
            if user is None:
                if api:
                    return JSONResponse({"error": "sign in first"}, status_code=401)
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
            if operator is not None:
                require_operator(user, operator)
            # Changes the page makes (keys issued, replays, ...) are recorded as this user's.
            with acting_as(f"portal:{user.name}"):
                return await handler(
                    Page(request=request, state=state, user=user, t=translator(request))
                )

        return endpoint

    return decorate


def problems_of(exc: DirectoryError) -> list[Problem]:
    """The broken rules of a refused change, for the form to show beside its fields."""
    if isinstance(exc, InvalidEntry):
        return exc.problems
    if isinstance(exc, AlreadyExists):
        return [Problem(exc.field, "is taken already (must be unique)", exc.key)]
    return [Problem("(entry)", exc.message)]

"""Sign-in, sign-out, the language switch and the health check."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from lintas.audit import AuditAction

from ._web import LANG_KEY, render, state_of, translator
from .auth import checked_form, current_user, sign_in, sign_out
from .exceptions import SignInFailed
from .i18n import LANGUAGES

__all__ = ["routes"]


def _safe_next(target: object) -> str:
    """Only a path on this site: an absolute URL would make sign-in an open redirect."""
    if not isinstance(target, str) or not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


async def login_form(request: Request) -> Response:
    state = state_of(request)
    if await current_user(request, state.users) is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    return render(
        request, "login.html", t=translator(request), next=request.query_params.get("next", "/")
    )


async def login(request: Request) -> Response:
    state = state_of(request)
    form = await checked_form(request)
    name = str(form.get("name", "")).strip().lower()
    password = str(form.get("password", ""))
    target = _safe_next(form.get("next"))
    client = request.client.host if request.client else "?"
    try:
        state.throttle.check(name)
        user = await state.users.authenticate(name, password)
    except SignInFailed:
        state.throttle.failed(name)
        # The name is only what was typed: the actor is where the attempt came from.
        await state.audit.record(
            f"web:{client}", AuditAction.PORTAL_SIGN_IN_FAILED, f"portal-user:{name}"
        )
        t = translator(request)
        return render(
            request, "login.html", t=t, status=401, error=t("login.failed"), next=target, name=name
        )
    state.throttle.succeeded(name)
    # Recorded before the session exists: a sign-in that cannot be audited does not happen.
    await state.audit.record(
        f"portal:{user.name}",
        AuditAction.PORTAL_SIGN_IN,
        f"portal-user:{user.name}",
        {"client": client, "role": user.role.value},
    )
    sign_in(request, user)
    return RedirectResponse(target, status_code=303)


async def logout(request: Request) -> Response:
    await checked_form(request)
    sign_out(request)
    return RedirectResponse("/login", status_code=303)


async def switch_language(request: Request) -> Response:
    form = await checked_form(request)
    lang = form.get("lang")
    if lang in LANGUAGES:
        request.session[LANG_KEY] = lang
    return RedirectResponse(_safe_next(form.get("next")), status_code=303)


async def healthz(request: Request) -> Response:
    async with state_of(request).pool.acquire() as conn:
        await conn.fetchval("SELECT 1")
    return PlainTextResponse("ok")


routes = [
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/lang", switch_language, methods=["POST"]),
    Route("/healthz", healthz, methods=["GET"]),
]

"""Sign-in sessions, roles and CSRF tokens.

The session is a cookie signed by Starlette's ``SessionMiddleware`` (itsdangerous) with a
``max_age``: the signature carries its time, so a cookie older than the idle limit is
refused by the server whatever the browser keeps. The cookie holds only the user name, a
CSRF token and the chosen language; the role is read from the database on every request, so
disabling a user or changing a role takes effect at once.

Every form carries the session's CSRF token in a hidden ``csrf_token`` field, and every POST
handler reads its form through :func:`checked_form`, which refuses a missing or different
token (:class:`CsrfRejected`, HTTP 403). The sign-in form has one too: an anonymous session
gets a token when the sign-in page is shown (this stops login CSRF).
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque

from starlette.datastructures import FormData
from starlette.requests import Request

from .exceptions import CsrfRejected, Forbidden, SignInFailed, UserNotFound
from .users import PortalUser, PortalUsers, Role

__all__ = [
    "CSRF_FIELD",
    "SignInThrottle",
    "checked_form",
    "csrf_token",
    "current_user",
    "require_operator",
    "sign_in",
    "sign_out",
]

CSRF_FIELD = "csrf_token"
_USER = "user"
_CSRF = "csrf"


def csrf_token(request: Request) -> str:
    """This session's CSRF token (created on first use)."""
    token = request.session.get(_CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[_CSRF] = token
    return token


async def checked_form(request: Request) -> FormData:
    """The request's form, once its CSRF token matches the session's.

    Raises:
        CsrfRejected: the token is missing, or is not this session's.
    """
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    expected = request.session.get(_CSRF)
    if not isinstance(sent, str) or not isinstance(expected, str):
        raise CsrfRejected()
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfRejected()
    return form


async def current_user(request: Request, users: PortalUsers) -> PortalUser | None:
    """The signed-in user, or None (also for a user disabled or removed since sign-in)."""
    name = request.session.get(_USER)
    if not isinstance(name, str):
        return None
    try:
        user: PortalUser | None = await users.get(name)
    except UserNotFound:
        user = None
    if user is None or user.disabled:
        request.session.pop(_USER, None)
        return None
    return user


def sign_in(request: Request, user: PortalUser) -> None:
    """Start a session for ``user``; a fresh CSRF token stops session fixation."""
    lang = request.session.get("lang")
    request.session.clear()
    request.session[_USER] = user.name
    request.session[_CSRF] = secrets.token_urlsafe(32)
    if lang is not None:
        request.session["lang"] = lang


def sign_out(request: Request) -> None:
    lang = request.session.get("lang")
    request.session.clear()
    if lang is not None:
        request.session["lang"] = lang


def require_operator(user: PortalUser, action: str) -> None:
    """Raises: Forbidden when ``user`` is not an operator."""
    if user.role is not Role.OPERATOR:
        raise Forbidden(action, user.role.value)


class SignInThrottle:
    """Refuses sign-in for a name after repeated failures, to slow password guessing.

    Args:
        limit: failures allowed within ``window_s``.
        window_s: how long a failure counts.
    """

    def __init__(self, *, limit: int = 5, window_s: float = 900.0) -> None:
        self._limit = limit
        self._window = window_s
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, name: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(name, deque())
        while failures and failures[0] < now - self._window:
            failures.popleft()
        return failures

    def check(self, name: str) -> None:
        """Raises: SignInFailed while ``name`` is throttled (same error as a wrong password)."""
        if len(self._recent(name, time.monotonic())) >= self._limit:
            raise SignInFailed()

    def failed(self, name: str) -> None:
        self._recent(name, time.monotonic()).append(time.monotonic())
        if len(self._failures) > 10_000:  # bound memory against a spray of names
            self._failures.clear()

    def succeeded(self, name: str) -> None:
        self._failures.pop(name, None)

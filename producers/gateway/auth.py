"""Who is calling: API keys verified against the live directory, and their use recorded.

Every request is checked against the gateway's :class:`~lintas.directory.DirectoryView`
(a dict lookup and one SHA-256), so a key revoked with ``lintas apps revoke`` is refused
within seconds, by every gateway process, without a restart. The last use of each key is
written to the directory in batches (:class:`KeyUsageRecorder`), never per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Protocol

from lintas.directory import Application, InvalidApiKey

from .._envelope import source_of
from .exceptions import Unauthenticated

__all__ = ["Caller", "KeyUsageRecorder", "KeyVerifier", "TouchSink", "authenticate"]

log = logging.getLogger("lintas.gateway")


class KeyVerifier(Protocol):
    """What verifies keys: a :class:`~lintas.directory.DirectoryView` (or its snapshot)."""

    def verify_api_key(self, token: str) -> Application: ...


class TouchSink(Protocol):
    """Where key use goes: :class:`lintas.directory.Directory` is one."""

    async def touch_key(self, key_id: str, at: dt.datetime | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated application of a request.

    Attributes:
        app: the application, as the directory has it now.
        key_id: the public id of the key it used.
        source: its CloudEvents source, ``/opd/<opd>/<app>``.
    """

    app: Application
    key_id: str
    source: str


def authenticate(authorization: str | None, verifier: KeyVerifier) -> Caller:
    """The caller of a request from its ``Authorization`` header.

    Raises:
        Unauthenticated: no bearer token, or the directory refuses it (the reason says why:
            malformed, unknown, revoked, expired, application retired).
    """
    if not authorization:
        raise Unauthenticated("no Authorization header")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be `Bearer <api key>`")
    token = token.strip()
    try:
        app = verifier.verify_api_key(token)
    except InvalidApiKey as exc:
        raise Unauthenticated(exc.reason) from None
    # A verified token has the shape lk_<key id>_<secret> (lintas.directory's format).
    key_id = token.split("_", 2)[1]
    return Caller(app=app, key_id=key_id, source=source_of(app.opd, app.id))


class KeyUsageRecorder:
    """Remembers when each key was last used and writes that every ``interval`` seconds.

    Usage::

        usage = KeyUsageRecorder(directory, interval=30)
        await usage.start()
        usage.used(caller.key_id)       # no I/O
        await usage.stop()              # writes what is left

    Args:
        sink: the directory (``touch_key``).
        interval: seconds between writes; the directory keeps ``last_used_at`` to the
            minute, so every 30 s is plenty.
    """

    def __init__(self, sink: TouchSink, *, interval: float = 30.0) -> None:
        self._sink = sink
        self._interval = interval
        self._last: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    def used(self, key_id: str) -> None:
        self._last[key_id] = time.time()

    async def flush(self) -> None:
        """Write the last use of every key used since the last flush.

        A key whose write fails is kept for the next flush (the database may be away).
        """
        pending, self._last = self._last, {}
        for key_id, when in pending.items():
            try:
                await self._sink.touch_key(key_id, dt.datetime.fromtimestamp(when, dt.UTC))
            except Exception as exc:  # the database is away: keep it for the next round
                log.warning("could not record the use of key %s: %s", key_id, exc)
                self._last[key_id] = max(self._last.get(key_id, when), when)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="gateway-key-usage")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop the periodic writes and write what is left, for at most ``timeout`` s."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            await asyncio.wait_for(self.flush(), timeout)
        except TimeoutError:
            # Only last_used_at is lost, which the next use of the key writes again.
            log.warning("key usage not recorded: the directory did not answer in %g s", timeout)

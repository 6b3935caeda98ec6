"""Each subscriber's signer, read from the directory and re-read when its secrets change.

The directory publishes the *ids* of a subscriber's secrets (never the secrets) with every
change of the subscriber, so a rotation shows in the live view within seconds; the secrets
themselves are fetched from :meth:`lintas.directory.Directory.webhook_secrets`. An old secret
stops being valid when its overlap ends, without any change being published, so signers are
also re-read every ``refresh`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from .exceptions import NoSigningSecret
from .signing import WebhookSigner

__all__ = ["SigningKeys"]

log = logging.getLogger(__name__)

SecretsFetcher = Callable[[str], Awaitable[list[str]]]


class SigningKeys:
    """A cache of signers, one per subscriber.

    Args:
        fetch: returns a subscriber's valid secrets, newest first
            (``directory.webhook_secrets``).
        refresh: seconds after which a signer is re-read even without a change.
    """

    def __init__(self, fetch: SecretsFetcher, *, refresh: float) -> None:
        self._fetch = fetch
        self._refresh = refresh
        self._cache: dict[str, tuple[tuple[str, ...], float, WebhookSigner | None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def signer(self, subscriber: str, secret_ids: tuple[str, ...]) -> WebhookSigner:
        """The subscriber's signer for the secrets ``secret_ids`` names.

        Raises:
            NoSigningSecret: the subscriber has no valid secret (retriable).
            Exception: the directory could not be read and nothing was cached.
        """
        cached = self._cache.get(subscriber)
        if cached is not None and self._fresh(cached, secret_ids):
            return _usable(subscriber, cached[2])
        lock = self._locks.setdefault(subscriber, asyncio.Lock())
        async with lock:
            cached = self._cache.get(subscriber)
            if cached is not None and self._fresh(cached, secret_ids):
                return _usable(subscriber, cached[2])
            try:
                secrets = await self._fetch(subscriber)
            except Exception as exc:
                if cached is None:
                    raise
                # The database is away: sign with what we had rather than stop delivering.
                log.warning("signing secrets of %s not refreshed: %s", subscriber, exc)
                return _usable(subscriber, cached[2])
            signer = WebhookSigner(secrets) if secrets else None
            self._cache[subscriber] = (secret_ids, time.monotonic(), signer)
            return _usable(subscriber, signer)

    def forget(self, subscriber: str) -> None:
        self._cache.pop(subscriber, None)

    def _fresh(
        self, cached: tuple[tuple[str, ...], float, WebhookSigner | None], ids: tuple[str, ...]
    ) -> bool:
        return cached[0] == ids and time.monotonic() - cached[1] < self._refresh


def _usable(subscriber: str, signer: WebhookSigner | None) -> WebhookSigner:
    if signer is None:
        raise NoSigningSecret(subscriber)
    return signer

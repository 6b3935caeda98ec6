"""The dispatcher: one delivery loop per webhook subscriber, following the live directory.

A subscriber added, paused, resumed, moved to another URL or given a new secret in the
directory is picked up within seconds, without a restart: :meth:`WebhookDispatcher.sync` is
called with every new snapshot of the :class:`~lintas.directory.DirectoryView`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import httpx

from lintas.directory import DeliveryMode, DirectorySnapshot, SubscriberStatus
from lintas.settings import DeliverSettings

from ._keys import SigningKeys
from ._worker import SubscriberWorker, Target
from .breaker import CircuitBreaker
from .queue import DeliveryQueue
from .retry import RetryPolicy
from .sender import WebhookSender

__all__ = ["WebhookDispatcher", "webhook_targets"]

log = logging.getLogger(__name__)


def webhook_targets(snapshot: DirectorySnapshot) -> dict[str, Target]:
    """Every webhook subscriber of the directory, with its URL, secret ids and status."""
    targets = {}
    for name, sub in snapshot.subscribers.items():
        if sub.mode is DeliveryMode.WEBHOOK and sub.webhook_url:
            targets[name] = Target(
                url=sub.webhook_url,
                secret_ids=tuple(snapshot.webhook_secret_ids.get(name, ())),
                active=sub.status is SubscriberStatus.ACTIVE,
                app_id=sub.app_id,
            )
    return targets


class WebhookDispatcher:
    """Runs a :class:`SubscriberWorker` per webhook subscriber.

    Usage::

        dispatcher = WebhookDispatcher(queue, keys, settings.deliver, on_delivered=...)
        dispatcher.sync(view.snapshot)          # again on every directory change
        dispatcher.notify({"dinsos-app"})      # new events were queued
        await dispatcher.stop()

    Args:
        queue: the delivery queue.
        keys: the subscribers' signers.
        settings: timeouts, concurrency, backoff, breaker.
        on_delivered: called with the target of each delivered event.
        on_dead: called when events were given up.
        transport: an httpx transport for every sender (tests).
    """

    def __init__(
        self,
        queue: DeliveryQueue,
        keys: SigningKeys,
        settings: DeliverSettings,
        *,
        on_delivered: Callable[[Target], None] = lambda target: None,
        on_dead: Callable[[], None] = lambda: None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._queue = queue
        self._keys = keys
        self._settings = settings
        self._policy = RetryPolicy.from_settings(settings)
        self._on_delivered = on_delivered
        self._on_dead = on_dead
        self._transport = transport
        self.workers: dict[str, SubscriberWorker] = {}

    async def sync(self, snapshot: DirectorySnapshot) -> None:
        """Start, update or stop workers to match the directory's webhook subscribers."""
        targets = webhook_targets(snapshot)
        for name in [n for n in self.workers if n not in targets]:
            log.info("%s is no longer a webhook subscriber: its deliveries stop", name)
            await self.workers.pop(name).stop()
            self._keys.forget(name)
        for name, target in targets.items():
            existing = self.workers.get(name)
            if existing is None:
                self.workers[name] = worker = self._worker(name, target)
                worker.start()
            elif existing.target != target:
                existing.update(target)

    def notify(self, subscribers: Iterable[str] | None) -> None:
        """Wake the workers of ``subscribers`` (all of them for None): new events were queued."""
        names = list(self.workers) if subscribers is None else subscribers
        for name in names:
            worker = self.workers.get(name)
            if worker is not None:
                worker.wake()

    async def stop(self) -> None:
        workers, self.workers = self.workers, {}
        for worker in workers.values():
            await worker.stop()

    def _worker(self, name: str, target: Target) -> SubscriberWorker:
        s = self._settings
        return SubscriberWorker(
            name,
            target,
            queue=self._queue,
            keys=self._keys,
            policy=self._policy,
            breaker=CircuitBreaker(
                threshold=s.breaker_threshold,
                cooldown=s.breaker_cooldown_s,
                max_cooldown=s.backoff_max_s,
            ),
            sender=WebhookSender(
                name,
                timeout=s.request_timeout_s,
                connect_timeout=s.connect_timeout_s,
                max_connections=s.max_in_flight,
                transport=self._transport,
            ),
            max_in_flight=s.max_in_flight,
            poll_interval=s.poll_interval_s,
            on_delivered=self._on_delivered,
            on_dead=self._on_dead,
        )

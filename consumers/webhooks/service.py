"""The webhook deliverer service (``lintas deliver``, started by ``lintas up``).

Wiring::

    DirectoryView ──► which subscribers are webhooks, their URLs, status, secret ids
          │
    DeliveryCopier      lintas.deliver.<sub> ──► lintas.webhook_deliveries (+ offsets, one tx)
          │ NOTIFY
    DispatchLease ──► (one deliverer of the group)
          ├─ WebhookDispatcher   one SubscriberWorker per webhook subscriber ──► POST
          ├─ DeadLetterWriter    given-up events ──► lintas.deliver.<sub>.dlq
          └─ pruning             delivered / dead-lettered rows past retention

Every deliverer copies (the partitions are shared out by the consumer group); the one holding
the dispatch lease also delivers. Start more for availability, not for speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import signal
from types import TracebackType
from typing import Any, Self

import httpx

from lintas.directory import ActivityTracker, Directory, DirectoryView
from lintas.exceptions import ConfigurationError
from lintas.kafka import KafkaConnection
from lintas.postgres import create_pool
from lintas.schemas.registry import SchemaRegistryClient
from lintas.settings import Settings

from .._dlq import DeadLetterTopics
from .._records import RecordDecoder
from ._keys import SigningKeys
from ._lease import DispatchLease
from ._worker import Target
from .copier import DeliveryCopier
from .deadletter import DeadLetterWriter
from .dispatcher import WebhookDispatcher, webhook_targets
from .health import SubscriberHealth, subscriber_health
from .queue import DeliveryQueue

__all__ = ["Deliverer", "run_deliverer"]

log = logging.getLogger(__name__)

_PRUNE_EVERY_S = 3600.0


class Deliverer:
    """Copies, delivers and dead-letters webhook events until stopped.

    Usage::

        async with Deliverer(settings, kafka=conn, pg_dsn=dsn, registry_url=url) as deliverer:
            await deliverer.wait()          # runs until stop() or a signal

    Args:
        settings: the root settings (``settings.deliver`` above all).
        kafka: the Kafka connection.
        pg_dsn: the platform database (migrated).
        registry_url: the schema registry (writer schemas of the delivery records).
        transport: an httpx transport for the POSTs (tests).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        kafka: KafkaConnection,
        pg_dsn: str,
        registry_url: str,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self._kafka = kafka
        self._pg_dsn = pg_dsn
        self._registry_url = registry_url
        self._transport = transport
        self._tasks: list[asyncio.Task[None]] = []
        self._resources: list[Any] = []
        self._changed = asyncio.Event()
        self._stopped = asyncio.Event()
        self.leading = False
        """Whether this deliverer holds the dispatch lease (delivers, not only copies)."""

    async def start(self) -> None:
        """Connect everything and start copying; dispatching starts once the lease is held.

        Raises:
            lintas.directory.DirectoryUnavailable: the directory topic cannot be read.
        """
        s = self.settings.deliver
        try:
            self._pool = await create_pool(
                self._pg_dsn, application_name="lintas-deliver", min_size=1, max_size=8
            )
            self._resources.append(self._pool)
            self._registry = SchemaRegistryClient(self._registry_url)
            self._resources.append(self._registry)
            self.view = DirectoryView(self._kafka, topic=s.directory_topic)
            await self.view.start()
            self._resources.append(self.view)
            self._directory = await Directory.open(
                self.settings, pg_dsn=self._pg_dsn, publish=False
            )
            self._resources.append(self._directory)
            self._tracker = ActivityTracker(self._directory)
            await self._tracker.start()
            self._resources.append(self._tracker)
            self.queue = DeliveryQueue(self._pool, group_id=s.group_id)
            self.dead_letters = DeadLetterWriter(
                self._kafka, self.queue, DeadLetterTopics(self._kafka, self.settings.kafka)
            )
            self.dispatcher = WebhookDispatcher(
                self.queue,
                SigningKeys(self._directory.webhook_secrets, refresh=s.secrets_refresh_s),
                s,
                on_delivered=self._delivered,
                on_dead=self.dead_letters.wake,
                transport=self._transport,
            )
            self.copier = DeliveryCopier(
                self._kafka,
                self.queue,
                RecordDecoder(self._registry),
                group_id=s.group_id,
                batch_max=s.copy_batch_max,
                horizon=s.retry_horizon_s,
            )
            await self.copier.start()
            self._resources.append(self.copier)
            self._lease = DispatchLease(
                self._pg_dsn, group_id=s.group_id, on_queued=self.dispatcher.notify
            )
        except BaseException:
            await self._close_resources()
            raise
        self.view.on_change(lambda key, value: self._changed.set())
        self.copier.set_subscribers(webhook_targets(self.view.snapshot))
        self._tasks = [
            asyncio.create_task(self.copier.run(), name="deliver-copier"),
            asyncio.create_task(self._follow_directory(), name="deliver-directory"),
            asyncio.create_task(self._lead(), name="deliver-lead"),
        ]
        log.info("deliverer started (group %s)", s.group_id)

    async def stop(self) -> None:
        """Stop copying and delivering; POSTs under way finish briefly (see the worker)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self._close_resources()
        self._stopped.set()

    async def wait(self) -> None:
        """Return when the deliverer was stopped."""
        await self._stopped.wait()

    async def health(
        self, *, subscriber: str | None = None, window: dt.timedelta = dt.timedelta(hours=1)
    ) -> list[SubscriberHealth]:
        """Per-subscriber delivery health (see :func:`subscriber_health`)."""
        return await subscriber_health(self._pool, subscriber=subscriber, window=window)

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

    # -- internals ----------------------------------------------------------------------

    def _delivered(self, target: Target) -> None:
        if target.app_id is not None:
            self._tracker.received(target.app_id)

    async def _follow_directory(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            snapshot = self.view.snapshot
            self.copier.set_subscribers(webhook_targets(snapshot))
            if self.leading:
                try:
                    await self.dispatcher.sync(snapshot)
                except Exception:  # one bad change must not stop following the directory
                    log.exception("applying a directory change to the dispatcher failed")

    async def _lead(self) -> None:
        while True:
            await self._lease.acquire()
            side: list[asyncio.Task[None]] = []
            try:
                self.leading = True
                await self.dead_letters.start()
                await self.dispatcher.sync(self.view.snapshot)
                side = [
                    asyncio.create_task(self.dead_letters.run(), name="deliver-dlq"),
                    asyncio.create_task(self._prune(), name="deliver-prune"),
                ]
                await self._lease.wait_lost()
            except Exception:
                # Kafka or the database failed us while taking up the role: hand it back
                # (another deliverer may do better) and try again shortly.
                log.exception("dispatching stopped")
            finally:
                self.leading = False
                for task in side:
                    task.cancel()
                await asyncio.gather(*side, return_exceptions=True)
                await self.dispatcher.stop()
                await self.dead_letters.stop()
                await self._lease.release()
            await asyncio.sleep(1.0)

    async def _prune(self) -> None:
        keep = dt.timedelta(days=self.settings.deliver.log_retention_days)
        while True:
            try:
                pruned = await self.queue.prune(older_than=keep)
                if pruned:
                    log.info("pruned %d delivered or dead-lettered events", pruned)
            except Exception as exc:
                log.warning("pruning the delivery log failed: %r", exc)
            await asyncio.sleep(_PRUNE_EVERY_S)

    async def _close_resources(self) -> None:
        resources, self._resources = self._resources, []
        for resource in reversed(resources):
            closer = getattr(resource, "stop", None) or getattr(resource, "aclose", None)
            closer = closer or getattr(resource, "close", None)
            if closer is None:
                continue
            try:
                await asyncio.wait_for(closer(), 15)
            except Exception as exc:
                log.warning("closing %s failed: %r", type(resource).__name__, exc)


async def run_deliverer(settings: Settings) -> None:
    """Run the deliverer until SIGTERM or SIGINT (the ``lintas deliver`` command).

    Raises:
        ConfigurationError: no schema registry is configured or running.
    """
    from lintas.endpoints import resolve_endpoints

    endpoints = resolve_endpoints(settings)
    if not endpoints.registry_url:
        raise ConfigurationError(
            "LINTAS_REGISTRY_URL",
            "the deliverer needs the schema registry to decode delivery records",
            hint="Start the local stack (`lintas up`) or set LINTAS_REGISTRY_URL.",
        )
    deliverer = Deliverer(
        settings,
        kafka=endpoints.kafka,
        pg_dsn=endpoints.pg_dsn,
        registry_url=endpoints.registry_url,
    )
    await deliverer.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(deliverer.stop()))
    await deliverer.wait()

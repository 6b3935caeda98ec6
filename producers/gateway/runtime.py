"""The gateway's long-lived parts, started and stopped together.

One :class:`Gateway` per process holds:

- a :class:`~lintas.directory.DirectoryView` of ``lintas.directory`` to verify API keys
  (started in the background and retried, so the gateway comes up while Kafka is away and
  answers 503 until the view has caught up);
- one :class:`~lintas.producers.EventProducer` with its own spool (``gateway``), which
  every request publishes through;
- the :class:`~.idempotency.IdempotencyStore` and the key-usage writer on PostgreSQL (both
  connect lazily, so a database outage refuses only requests that need it);
- the per-application rate limiter and the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from lintas.directory import Application, DirectoryUnavailable, DirectoryView
from lintas.kafka import KafkaConnection
from lintas.schemas import Catalog, EventType, SchemaResolver, load_catalog
from lintas.settings import Settings

from .._producer import EventProducer
from .auth import KeyUsageRecorder, KeyVerifier
from .idempotency import IdempotencyStore
from .ingest import Ingestor
from .limits import RateLimiter
from .metrics import GatewayMetrics

if TYPE_CHECKING:
    from lintas.directory import Directory

__all__ = ["Gateway"]

log = logging.getLogger("lintas.gateway")

_VIEW_RETRY_S = (1.0, 30.0)  # back-off bounds while the directory topic cannot be read


class Gateway:
    """Everything a gateway process keeps between requests.

    Usage::

        gateway = Gateway(settings, kafka=conn, pg_dsn=dsn, registry=url)
        app = create_app(gateway)        # starts and stops it with the app's lifespan

    Args:
        settings: the root settings (``gateway``, ``producer`` and ``kafka`` groups).
        kafka: the Kafka connection of the view and the producer.
        pg_dsn: the Lintas database (idempotency keys, key usage); ``None`` runs without
            either (the benchmark does), and then Idempotency-Key is not honoured.
        registry: the schema registry's URL or a resolver.
        verifier: verifies API keys; a :class:`DirectoryView` of
            ``settings.gateway.directory_topic`` when not given.
        topic_of: where events of a type go; the catalog topic by default (tests).
        metrics_registry: the registry ``/metrics`` serves; a new one when not given.
        catalog: the contract catalog; the shipped one when not given.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        kafka: KafkaConnection,
        pg_dsn: str | None,
        registry: str | SchemaResolver | None,
        verifier: KeyVerifier | None = None,
        topic_of: Callable[[EventType], str] | None = None,
        metrics_registry: CollectorRegistry | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        self.settings = settings
        self.config = settings.gateway
        self.catalog = catalog or load_catalog()
        self.metrics_registry = metrics_registry or CollectorRegistry()
        self.metrics = GatewayMetrics(self.metrics_registry)
        self._kafka = kafka
        self._pg_dsn = pg_dsn
        self._view: DirectoryView | None = None
        self._verifier = verifier
        self._view_task: asyncio.Task[None] | None = None
        self.producer = EventProducer(
            app="gateway",
            name=self.config.spool_name,
            settings=settings,
            connection=kafka,
            registry=registry,
            metrics_registry=self.metrics_registry,
            topic_of=topic_of,
        )
        self.store = (
            IdempotencyStore(
                pg_dsn,
                ttl_s=self.config.idempotency_ttl_s,
                # A request lasts at most request_timeout_s, and the publishing it started
                # at most send_timeout_s more: a claim older than both is abandoned.
                abandon_after_s=self.config.request_timeout_s + settings.producer.send_timeout_s,
            )
            if pg_dsn is not None
            else None
        )
        self._directory: Directory | None = None
        self.usage = KeyUsageRecorder(self, interval=self.config.key_touch_interval_s)
        self.limiter = RateLimiter(
            rate=self.config.rate_limit_per_s, burst=self.config.rate_limit_burst
        )
        self.ingestor = Ingestor(
            self.producer,
            settings=self.config,
            catalog=self.catalog,
            limiter=self.limiter,
            metrics=self.metrics,
            store=self.store,
        )

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Start the producer (offline if Kafka is away), the store and the view's reader."""
        await self.producer.start()
        if self.store is not None:
            await self.store.start()
            await self.usage.start()
        if self._verifier is None:
            self._view_task = asyncio.create_task(self._start_view(), name="gateway-directory")
        else:
            self.metrics.directory_ready.set(1)
        log.info("gateway started (spool %s)", self.producer.spool_path)

    async def _start_view(self) -> None:
        delay = _VIEW_RETRY_S[0]
        while True:
            view = DirectoryView(self._kafka, topic=self.config.directory_topic)
            try:
                await view.start()
            except DirectoryUnavailable as exc:
                log.warning("directory not readable yet (%s); retrying in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _VIEW_RETRY_S[1])
                continue
            self._view = view
            self.metrics.directory_ready.set(1)
            log.info("directory view caught up with %s", self.config.directory_topic)
            return

    async def stop(self) -> None:
        """Finish publishing in progress, flush and stop the producer, close the rest.

        Bounded: the producer spools what Kafka has not acknowledged by its stop timeout.
        """
        stop_timeout = self.settings.producer.stop_timeout_s
        await self.ingestor.drain(self.config.request_timeout_s)
        await self.producer.stop()
        task, self._view_task = self._view_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._view is not None:
            await self._view.stop()
        if self.store is not None:
            await self.usage.stop(stop_timeout)
            await self.store.stop()
        if self._directory is not None:
            await self._directory.close()

    # -- what requests use ---------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Whether keys can be verified (the directory view has caught up)."""
        return self._verifier is not None or self._view is not None

    def verify_api_key(self, token: str) -> Application:
        """The application of a key, from the live directory.

        Raises:
            InvalidApiKey: the directory refuses the key.
            DirectoryUnavailable: the view has not caught up yet (just started, or Kafka
                was away at start).
        """
        verifier = self._verifier or self._view
        if verifier is None:
            raise DirectoryUnavailable(
                self.config.directory_topic,
                "the gateway has not read the directory yet",
                hint="Retry shortly; `lintas logs gateway` says why if it persists.",
            )
        return verifier.verify_api_key(token)

    async def touch_key(self, key_id: str, at: dt.datetime | None = None) -> None:
        """Record a key's last use in the directory (called in batches by ``usage``)."""
        if self._directory is None:
            from lintas.directory import Directory

            # Opened on first use, so a database that is away at start delays only this.
            self._directory = await Directory.open(
                self.settings, pg_dsn=self._pg_dsn, kafka=self._kafka, publish=False
            )
        await self._directory.touch_key(key_id, at)

"""Publishing the simulated applications' events through the Python producer SDK.

Each SDK application gets its own :class:`~lintas.producers.EventProducer`, named and
sourced as the real application would be (``ce_source=/opd/<opd>/<app>``, spool
``<opd>.<app>``), so the platform counts its events for it. Gateway applications publish
from Node.js instead (:mod:`lintas.demo.gateway_client`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Protocol

from lintas.kafka import KafkaConnection
from lintas.producers import Event, EventProducer, ProducerError, ValidationFailed
from lintas.settings import Settings

from .apps import SimApp
from .types import Outcome, OutcomeStatus, SimEvent

__all__ = ["Publisher", "SdkPublisher"]

log = logging.getLogger(__name__)


class Publisher(Protocol):
    """Something that publishes a simulated application's events."""

    async def publish(self, app: SimApp, events: Sequence[SimEvent]) -> list[Outcome]:
        """Publish ``events`` of ``app`` in order; one outcome per event, in the same order."""
        ...


class SdkPublisher:
    """The SDK applications' producers.

    Args:
        settings: the root settings (spool directory, timeouts).
        connection: Kafka's address and credential.
        registry_url: the schema registry.
    """

    def __init__(
        self, settings: Settings, *, connection: KafkaConnection, registry_url: str | None
    ) -> None:
        self._settings = settings
        self._connection = connection
        self._registry_url = registry_url
        self._producers: dict[str, EventProducer] = {}

    async def start(self, apps: Iterable[SimApp]) -> None:
        """Start one producer per application, all at once (each waits for the broker)."""
        for app in apps:
            self._producers[app.app_id] = EventProducer(
                app=app.app_id,
                opd=app.opd,
                settings=self._settings,
                connection=self._connection,
                registry=self._registry_url,
            )
        await asyncio.gather(*(p.start() for p in self._producers.values()))

    async def publish(self, app: SimApp, events: Sequence[SimEvent]) -> list[Outcome]:
        """Send ``events`` with ``send_many``: validated, encoded and sent in batches.

        Returns:
            ``sent`` or ``spooled`` per event; ``refused`` for all of them when one breaks
            its contract (the SDK then sends none), ``failed`` when the SDK raised.
        """
        producer = self._producers[app.app_id]
        wrapped = [Event(data=e.record, event_type=e.event_type, id=e.id) for e in events]
        try:
            deliveries = await producer.send_many(wrapped)
        except ValidationFailed as exc:
            return [Outcome(e.id, OutcomeStatus.REFUSED, exc.message) for e in events]
        except ProducerError as exc:
            return [Outcome(e.id, OutcomeStatus.FAILED, exc.message) for e in events]
        return [
            Outcome(d.event_id, OutcomeStatus.SENT if d.sent else OutcomeStatus.SPOOLED)
            for d in deliveries
        ]

    async def stop(self) -> None:
        """Flush and stop every producer (each bounded by its stop timeout); what is not
        acknowledged by then stays in its spool for the next start."""
        producers, self._producers = list(self._producers.values()), {}
        results = await asyncio.gather(*(p.stop() for p in producers), return_exceptions=True)
        for producer, result in zip(producers, results, strict=True):
            if isinstance(result, Exception):
                log.warning("producer %s did not stop cleanly: %s", producer.name, result)

    def spooled(self) -> int:
        """Events waiting in the producers' spools right now."""
        total = 0
        for producer in self._producers.values():
            try:
                total += producer.spooled
            except ProducerError:
                continue  # stopped meanwhile
        return total

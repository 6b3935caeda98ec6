"""``EventProducer``: validate, encode, envelope and hand over events, spooling when needed."""

from __future__ import annotations

import datetime as dt
import logging
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from lintas.kafka import KafkaConnection
from lintas.schemas import AvroSerializer, EventModel, EventType, SchemaResolver
from lintas.settings import Settings, load_settings

from ._encoder import Encoder, RememberingResolver
from ._envelope import check_name
from ._pipeline import Pipeline
from ._spool import Spool
from ._transport import Transport
from .exceptions import ProducerClosed, ValidationFailed
from .metrics import ProducerMetrics
from .types import Delivery, Event, EventLike

if TYPE_CHECKING:
    from lintas.schemas.registry import SchemaRegistryClient

__all__ = ["EventProducer", "ProducerState", "kafka_options_for", "spool_root"]

log = logging.getLogger("lintas.producers")

# What the SDK promises (no acknowledged event lost, no reordering by retries) rests on
# these; they cannot be turned off through kafka_options.
_FIXED_OPTIONS = frozenset({"acks", "enable_idempotence", "transactional_id"})


class ProducerState(StrEnum):
    NEW = "new"
    STARTED = "started"
    STOPPED = "stopped"


def spool_root(settings: Settings) -> Path:
    """Where spools live: ``LINTAS_PRODUCER__SPOOL_DIR``, else ``<data_dir>/spool``."""
    return (settings.producer.spool_dir or settings.data_dir / "spool").expanduser()


def kafka_options_for(settings: Settings, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The aiokafka producer options the SDK uses (the benchmark's baseline uses them too).

    Raises:
        ValueError: ``extra`` tries to change acks, idempotence or transactions.
    """
    fixed = _FIXED_OPTIONS.intersection(extra or {})
    if fixed:
        raise ValueError(
            f"kafka_options may not set {', '.join(sorted(fixed))}: the producer relies on "
            "acks=all and idempotence"
        )
    options: dict[str, Any] = {
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": settings.producer.linger_ms,
        "max_batch_size": settings.producer.batch_bytes,
        "request_timeout_ms": settings.kafka.request_timeout_ms,
    }
    options.update(extra or {})
    return options


class EventProducer:
    """Publishes catalog events to Kafka; spools them on disk while the broker is away.

    Usage::

        async with EventProducer(app="siak", opd="dukcapil") as producer:
            delivery = await producer.send(kematian)          # a catalog model
            delivery.status                                   # "sent" or "spooled"
            await producer.send({"nik": ...}, event_type="dukcapil.kematian_dicatat.v1")
            await producer.send_many(events)

    ``send`` returns once the broker acknowledged the event (acks=all, idempotence on), or
    once it is on disk in the spool when the broker cannot be reached or does not answer
    within ``LINTAS_PRODUCER__SEND_TIMEOUT_S``. Spooled events are forwarded in order, by
    this producer or by the next one started with the same name (after a restart of the
    app); while the spool holds anything, new events queue behind it, so one subject's
    events (one citizen's, keyed by NIK) stay in order.

    Args:
        app: the application's name (``ce_source`` is ``/opd/<opd>/<app>``).
        opd: the application's OPD code; ``None`` uses each event type's OPD.
        name: the spool's name; ``<opd>.<app>`` (or ``<app>``) by default. Processes of one
            app share a name: each takes its own slot of it.
        settings: the Lintas settings; read from ``LINTAS_*`` when not given (an OPD app is
            its own entry point).
        connection: the Kafka connection; from the settings when not given.
        registry: the schema registry's URL or a resolver; from the settings when not given.
        metrics_registry: where to register the metrics (the default registry otherwise).
        topic_of: where events of a type go; the catalog topic by default (tests route to a
            topic of their own).
        spool_slot: use exactly this slot of the spool (raises ``SpoolLocked`` when taken);
            the first free one by default.
        kafka_options: further aiokafka producer options (``compression_type``, ...).

    Raises:
        ValueError: ``app``, ``opd`` or ``name`` is not a valid name, or ``kafka_options``
            tries to change acks or idempotence.
        ConfigurationError, StackError: no Kafka address or credentials are configured.
    """

    def __init__(
        self,
        *,
        app: str,
        opd: str | None = None,
        name: str | None = None,
        settings: Settings | None = None,
        connection: KafkaConnection | None = None,
        registry: str | SchemaResolver | None = None,
        metrics_registry: CollectorRegistry | None = None,
        topic_of: Callable[[EventType], str] | None = None,
        spool_slot: int | None = None,
        kafka_options: Mapping[str, Any] | None = None,
    ) -> None:
        check_name("app name", app)
        if opd is not None:
            check_name("OPD code", opd)
        self.app = app
        self.opd = opd
        self.name = name or (f"{opd}.{app}" if opd else app)
        for part in self.name.split("."):
            check_name("spool name part", part)
        self._settings = settings if settings is not None else load_settings()
        if connection is None:
            from lintas.endpoints import kafka_connection

            connection = kafka_connection(self._settings)
        self._connection = connection
        self._owned_client: SchemaRegistryClient | None = None
        if registry is None:
            from lintas.endpoints import registry_url

            registry = registry_url(self._settings)
        self._registry: SchemaResolver | None
        if isinstance(registry, str):
            from lintas.schemas.registry import SchemaRegistryClient

            self._registry = self._owned_client = SchemaRegistryClient(registry)
            self._registry_key = registry
        else:
            self._registry = registry
            self._registry_key = getattr(registry, "url", None) or type(registry).__name__
        self._options = kafka_options_for(self._settings, kafka_options)
        self._topic_of = topic_of
        self._spool_slot = spool_slot
        self.metrics = ProducerMetrics(self.name, metrics_registry)
        self._state = ProducerState.NEW
        self._pipeline: Transport | None = None
        self._encoder: Encoder | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Open the spool and connect (within ``start_timeout_s``).

        An unreachable broker is not an error: the producer starts offline, spooling, and
        connects in the background.

        Raises:
            NotAuthorized: the broker answered and refuses this principal outright.
            SpoolLocked: ``spool_slot`` was given and another process holds it.
            ProducerClosed: it was started before.
        """
        if self._state is not ProducerState.NEW:
            raise ProducerClosed(f"{self._state} (a producer starts once)")
        self._encoder, transport = await self._open()
        self._pipeline = transport
        self._state = ProducerState.STARTED
        log.info(
            "Producer %s started (%s), spool %s",
            self.name,
            "spooling" if transport.spooling else "connected",
            transport.spool_path,
        )

    async def _open(self) -> tuple[Encoder, Transport]:
        """The encoder and the transport of a starting producer: the spool, then Kafka.

        The one seam :class:`lintas.producers.testing.FakeEventProducer` overrides: the
        encoder (validation, Avro, envelope) is always :meth:`_encoder_for`'s.
        """
        settings = self._settings
        spool = await Spool.open(
            spool_root(settings),
            self.name,
            max_bytes=settings.producer.spool_max_bytes,
            slot=self._spool_slot,
        )
        try:
            known = await spool.schema_ids(self._registry_key)
            encoder = self._encoder_for(
                RememberingResolver(self._registry, self._registry_key, spool, known)
            )
            pipeline = Pipeline(
                spool=spool,
                conn=self._connection,
                settings=settings.producer,
                kafka_options=self._options,
                metrics=self.metrics,
            )
            await pipeline.start()
        except BaseException:
            await spool.close()
            raise
        return encoder, pipeline

    def _encoder_for(self, resolver: SchemaResolver) -> Encoder:
        """The encoder of this producer's events, with schema ids from ``resolver``."""
        return Encoder(
            AvroSerializer(resolver), app=self.app, opd=self.opd, topic_of=self._topic_of
        )

    async def stop(self) -> None:
        """Flush (up to ``stop_timeout_s``), spool what is left, and close. Idempotent.

        Never hangs, even with the broker gone: what is not acknowledged by the deadline
        stays in the spool for the next start.
        """
        if self._state is ProducerState.STOPPED:
            return
        self._state = ProducerState.STOPPED
        try:
            if self._pipeline is not None:
                await self._pipeline.stop()
        finally:
            if self._owned_client is not None:
                await self._owned_client.aclose()

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until everything handed over is in Kafka and the spool is empty.

        Args:
            timeout: seconds; ``stop_timeout_s`` by default.

        Raises:
            FlushTimeout: not done in time; the spool keeps what is left.
        """
        pipeline = self._running()
        if timeout is None:
            timeout = self._settings.producer.stop_timeout_s
        await pipeline.flush(timeout)

    async def __aenter__(self) -> EventProducer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def __del__(self) -> None:
        if getattr(self, "_state", None) is ProducerState.STARTED:
            warnings.warn(
                f"EventProducer {self.name!r} was not stopped; use `async with` or "
                "`await producer.stop()` (unacknowledged events may be lost)",
                ResourceWarning,
                stacklevel=2,
            )

    # -- sending -------------------------------------------------------------------------

    async def send(
        self,
        event: EventModel | Mapping[str, Any],
        *,
        event_type: str | EventType | None = None,
        event_id: str | None = None,
        time: dt.datetime | None = None,
        subject: str | None = None,
        source: str | None = None,
        headers: Mapping[str, bytes] | None = None,
    ) -> Delivery:
        """Send one event; its delivery once acknowledged or spooled.

        Args:
            event: a catalog model, or a dict validated against ``event_type``'s model.
            event_type: the event type of a dict (``dukcapil.kematian_dicatat.v1``).
            event_id, time, subject, source, headers: envelope overrides, see
                :class:`~lintas.producers.Event`.

        Raises:
            ValidationFailed: the event breaks its contract; nothing was sent.
            SchemaUnavailable: its schema id is unknown and the registry unreachable.
            SpoolFull: the broker is away and the spool has no room.
            NotAuthorized: the broker refuses this app on the event's topic.
            TopicNotFound, DeliveryFailed, ProducerClosed: see :mod:`.exceptions`.

        Note:
            Cancelling ``send`` leaves the event's fate open (it may reach Kafka). Retry
            with the same ``event_id``.
        """
        if (
            isinstance(event, EventModel)
            and event_type is None
            and event_id is None
            and time is None
            and subject is None
            and source is None
            and headers is None
        ):
            item: EventLike = event
        else:
            item = Event(
                data=event,
                event_type=event_type,
                id=event_id,
                time=time,
                subject=subject,
                source=source,
                headers=headers,
            )
        return (await self.send_many((item,)))[0]

    async def send_many(self, events: Iterable[EventLike]) -> list[Delivery]:
        """Send events in order, batched; their deliveries in the same order.

        Every event is validated and encoded first: one invalid event fails the call with
        ``ValidationFailed`` (its ``index`` says which) and nothing is sent.

        Raises:
            The same as :meth:`send`. ``NotAuthorized`` and ``DeliveryFailed`` carry the
            deliveries of the events that did go through in ``deliveries``.
        """
        pipeline = self._running()
        assert self._encoder is not None
        started = time.perf_counter()
        try:
            records = await self._encoder.encode(events)
        except ValidationFailed:
            self.metrics.failed("validation")
            raise
        deliveries = await pipeline.submit(records)
        self.metrics.latency.observe(time.perf_counter() - started)
        return deliveries

    # -- state -------------------------------------------------------------------------

    @property
    def state(self) -> ProducerState:
        return self._state

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def spooling(self) -> bool:
        """Whether new events go to the spool now (broker away, or spool not yet drained)."""
        return self._running().spooling

    @property
    def spooled(self) -> int:
        """Events waiting in the spool."""
        return self._running().spooled

    @property
    def in_flight(self) -> int:
        """Events handed to Kafka and not yet acknowledged."""
        return self._running().in_flight

    @property
    def spool_path(self) -> Path:
        return self._running().spool_path

    def _running(self) -> Transport:
        if self._state is not ProducerState.STARTED or self._pipeline is None:
            raise ProducerClosed(str(self._state))
        return self._pipeline

"""A fake producer for OPD applications' own unit tests: no broker, no registry, no disk.

Like faststream's ``TestKafkaBroker`` and httpx's ``MockTransport``: the application's code
keeps calling ``send``/``send_many``, and the test looks at what was published::

    from lintas.producers.testing import FakeEventProducer

    async def test_a_death_is_published() -> None:
        async with FakeEventProducer(app="siak", opd="dukcapil") as producer:
            await catat_kematian(producer, nik="3273012108480001")   # the app's own code
        [published] = producer.published
        assert published.topic == "opd.dukcapil.kematian_dicatat.v1"
        assert published.event.nik == "3273012108480001"             # the catalog model
        assert published.header("ce_source") == "/opd/dukcapil/siak"

What is real: everything up to Kafka is the SDK's own code, not a copy. Events are
validated and Avro-encoded with their schema's id, wrapped in the CloudEvents envelope and
keyed by their subject exactly as :class:`~lintas.producers.EventProducer` does;
``ValidationFailed``, ``SchemaUnavailable`` and the metrics are the same. What is simulated:
the broker (partitions chosen as Kafka's default partitioner chooses them, offsets from 0
per partition) and the spool (in memory). Without ``registry=``, schema ids come from an
in-memory registry holding the installed catalog, as after ``lintas schemas register``.

Faults to test the application's handling of::

    producer.deny("opd.dukcapil.kematian_dicatat.v1")   # send raises NotAuthorized
    producer.go_offline()     # sends return "spooled"; flush raises FlushTimeout; a full
                              # spool (LINTAS_PRODUCER__SPOOL_MAX_BYTES) raises SpoolFull
    producer.go_online()      # the spooled events are published, in order

:class:`FakeProducer` is the same for the blocking :class:`~lintas.producers.Producer`.
``tests/integration/test_producer_fake_conformance.py`` runs one test class against the
fake and the real broker, so the two cannot drift apart.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, cast

from prometheus_client import CollectorRegistry

from lintas.kafka import KafkaConnection
from lintas.schemas import (
    EventModel,
    EventType,
    SchemaResolver,
    decode,
    from_avro_dict,
    load_catalog,
    parse_header,
)
from lintas.schemas.testing import InMemorySchemaResolver
from lintas.settings import Settings

from ._encoder import Encoder, RememberingResolver
from ._kafka import murmur2
from ._producer import EventProducer
from ._record import Record
from ._sync import Producer
from ._transport import Transport
from .exceptions import FlushTimeout, NotAuthorized, ProducerClosed, SpoolFull
from .metrics import ProducerMetrics
from .types import Delivery, DeliveryStatus

__all__ = ["FakeEventProducer", "FakeProducer", "KafkaRecord", "PublishedEvent"]

SENT, SPOOLED = DeliveryStatus.SENT, DeliveryStatus.SPOOLED


class KafkaRecord(Protocol):
    """What :meth:`PublishedEvent.from_kafka` reads: an aiokafka ``ConsumerRecord``."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishedEvent:
    """One event as it sits in Kafka, decoded for assertions.

    Attributes:
        topic, partition, offset: where it is (or, for the fake, would be).
        key: the record key, the event's subject (the NIK for citizen events).
        value: the Avro body in the Confluent wire format.
        headers: the CloudEvents attributes (``ce_*``, ``content-type``), then extra ones.
        event_id, event_type: ``ce_id`` and ``ce_type``.
        schema_id: the registry id framed in ``value``.
        record: ``value`` decoded with the catalog schema of ``event_type``.
    """

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    event_id: str
    event_type: str
    schema_id: int
    record: dict[str, Any] = field(repr=False)

    @classmethod
    def decoded(
        cls,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes,
        value: bytes,
        headers: Iterable[tuple[str, bytes]],
    ) -> PublishedEvent:
        """Decode a record as the SDK wrote it.

        Raises:
            KeyError: it has no ``ce_id`` or ``ce_type`` header.
            lintas.schemas.UnknownEventType: its ``ce_type`` is not in the catalog.
            lintas.schemas.DeserializationError: ``value`` is not that type's Avro.
        """
        headers = tuple(headers)
        named = dict(headers)
        event_type = named["ce_type"].decode()
        writer_schema = load_catalog().get(event_type).parsed_schema
        return cls(
            topic=topic,
            partition=partition,
            offset=offset,
            key=key,
            value=value,
            headers=headers,
            event_id=named["ce_id"].decode(),
            event_type=event_type,
            schema_id=parse_header(value, topic=topic, partition=partition, offset=offset),
            record=decode(value, writer_schema, topic=topic, partition=partition, offset=offset),
        )

    @classmethod
    def from_kafka(cls, record: KafkaRecord) -> PublishedEvent:
        """The same view of a record read back from the real broker (to compare with)."""
        return cls.decoded(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key or b"",
            value=record.value or b"",
            headers=record.headers,
        )

    def header(self, name: str) -> str | None:
        """The text of header ``name`` (``ce_source``, ``ce_subject``, ...), or None."""
        for key, value in self.headers:
            if key == name:
                return value.decode()
        return None

    @property
    def event(self) -> EventModel:
        """The catalog model of the event (``model_for(event_type)``), as a consumer sees it."""
        return from_avro_dict(self.event_type, self.record)


class _MemoryBroker:
    """The fake's :class:`~._transport.Transport`: a broker and a spool in memory.

    Args:
        name: the producer's name (for the spool's path).
        principal: who refusals name (``User:app-siak``).
        partitions: partitions of every topic.
        max_bytes: the spool's bound, as ``LINTAS_PRODUCER__SPOOL_MAX_BYTES``.
        metrics: the producer's metrics, counted as the real pipeline counts them.
    """

    def __init__(
        self,
        *,
        name: str,
        principal: str,
        partitions: int,
        max_bytes: int,
        metrics: ProducerMetrics,
    ) -> None:
        self.principal = principal
        self.published: list[PublishedEvent] = []
        self.rejected: list[PublishedEvent] = []
        self.denied: set[str] = set()
        self.offline = False
        self._partitions = partitions
        self._max_bytes = max_bytes
        self._metrics = metrics
        self._spool: list[Record] = []
        self._offsets: dict[tuple[str, int], itertools.count[int]] = {}
        self._path = Path("(memory)") / name
        self._stopped = False

    @property
    def spooling(self) -> bool:
        return self.offline or bool(self._spool)

    @property
    def in_flight(self) -> int:
        return 0  # a record is published or spooled within its call

    @property
    def spooled(self) -> int:
        return len(self._spool)

    @property
    def spool_path(self) -> Path:
        return self._path

    async def submit(self, records: Sequence[Record]) -> list[Delivery]:
        if self._stopped:
            raise ProducerClosed("stopping")
        if not records:
            return []
        if self.spooling:
            return self._to_spool(records)
        # The real producer asks for every topic's metadata before it sends anything, so a
        # refused topic fails the whole call with nothing sent.
        for record in records:
            if record.topic in self.denied:
                self._metrics.failed("not_authorized", len(records))
                raise NotAuthorized(record.topic, self.principal)
        deliveries = [self._publish(r) for r in records]
        for topic, count in Counter(r.topic for r in records).items():
            self._metrics.sent(topic, count)
        return deliveries

    async def flush(self, timeout: float) -> None:
        if self._spool:
            raise FlushTimeout(timeout, in_flight=0, spooled=len(self._spool))

    async def stop(self) -> None:
        # What is spooled stays spooled, as on disk; nothing is in flight.
        self._stopped = True

    def go_online(self) -> None:
        """Publish the spool, oldest first; a record on a refused topic is set apart."""
        self.offline = False
        waiting, self._spool = self._spool, []
        for record in waiting:
            if record.topic in self.denied:
                self.rejected.append(self._view(record, partition=-1, offset=-1))
                self._metrics.failed("not_authorized")
                continue
            self._publish(record)
            self._metrics.forwarded.inc()
        self._update_gauges()

    def _to_spool(self, records: Sequence[Record]) -> list[Delivery]:
        used = sum(r.size for r in self._spool)
        needed = sum(r.size for r in records)
        if used + needed > self._max_bytes:
            self._metrics.failed("spool_full", len(records))
            raise SpoolFull(
                str(self._path),
                used_bytes=used,
                limit_bytes=self._max_bytes,
                records=len(self._spool),
                needed_bytes=needed,
            )
        self._spool.extend(records)
        self._metrics.spooled.inc(len(records))
        self._update_gauges()
        return [Delivery(r.event_id, r.topic, SPOOLED) for r in records]

    def _publish(self, record: Record) -> Delivery:
        # Kafka's default partitioner (murmur2 of the key), as the real producer applies it.
        partition = (murmur2(record.key) & 0x7FFFFFFF) % self._partitions
        offset = next(self._offsets.setdefault((record.topic, partition), itertools.count()))
        self.published.append(self._view(record, partition=partition, offset=offset))
        return Delivery(record.event_id, record.topic, SENT, partition, offset)

    def _view(self, record: Record, *, partition: int, offset: int) -> PublishedEvent:
        return PublishedEvent.decoded(
            topic=record.topic,
            partition=partition,
            offset=offset,
            key=record.key,
            value=record.value,
            headers=record.headers,
        )

    def _update_gauges(self) -> None:
        self._metrics.spool_size(len(self._spool), sum(r.size for r in self._spool))


async def _register_catalog(registry: InMemorySchemaResolver) -> None:
    for event_type in load_catalog():
        await registry.register(event_type.subject, event_type.schema_str)


class FakeEventProducer(EventProducer):
    """An :class:`~lintas.producers.EventProducer` whose broker and spool are in memory.

    Usage::

        async with FakeEventProducer(app="siak", opd="dukcapil") as producer:
            delivery = await producer.send(kematian)     # "sent", partition, offset
        assert [p.event for p in producer.published] == [kematian]

    Args:
        app, opd, name, settings, topic_of: as for ``EventProducer``.
        registry: a registry URL or resolver for schema ids; by default an in-memory
            registry holding the installed catalog (:attr:`schema_registry`).
        metrics_registry: where the metrics go; a fresh registry by default, so that
            tests do not share counts.
        principal: who refusals name (``NotAuthorized.principal``); ``User:app-<app>``
            by default, the principal ``lintas apps add`` gives an application.
        partitions: partitions of every topic (``LINTAS_KAFKA__PARTITIONS`` by default).
        denied_topics: topics the principal may not write (see :meth:`deny`).
        offline: start with the broker unreachable (see :meth:`go_offline`).
    """

    def __init__(
        self,
        *,
        app: str,
        opd: str | None = None,
        name: str | None = None,
        settings: Settings | None = None,
        registry: str | SchemaResolver | None = None,
        metrics_registry: CollectorRegistry | None = None,
        topic_of: Callable[[EventType], str] | None = None,
        principal: str | None = None,
        partitions: int | None = None,
        denied_topics: Iterable[str] = (),
        offline: bool = False,
    ) -> None:
        self._catalog_registry = InMemorySchemaResolver() if registry is None else None
        user = (principal or f"app-{app}").removeprefix("User:")
        super().__init__(
            app=app,
            opd=opd,
            name=name,
            settings=settings,
            # Nothing connects: the connection only names the principal refusals report.
            connection=KafkaConnection(bootstrap="fake:0", username=user, password=""),
            registry=registry if registry is not None else self._catalog_registry,
            metrics_registry=CollectorRegistry() if metrics_registry is None else metrics_registry,
            topic_of=topic_of,
        )
        self._broker = _MemoryBroker(
            name=self.name,
            principal=f"User:{user}",
            partitions=partitions or self.settings.kafka.partitions,
            max_bytes=self.settings.producer.spool_max_bytes,
            metrics=self.metrics,
        )
        self._broker.denied.update(denied_topics)
        self._broker.offline = offline

    async def _open(self) -> tuple[Encoder, Transport]:
        # The real producer's encoder, with ids remembered in memory instead of the spool.
        if self._catalog_registry is not None:
            await _register_catalog(self._catalog_registry)
        resolver = RememberingResolver(self._registry, self._registry_key, None, {})
        return self._encoder_for(resolver), self._broker

    # -- what was published ---------------------------------------------------------------

    @property
    def published(self) -> list[PublishedEvent]:
        """Every event the broker took, in the order it took them."""
        return list(self._broker.published)

    @property
    def rejected(self) -> list[PublishedEvent]:
        """Spooled events refused when forwarded (their topic was denied meanwhile)."""
        return list(self._broker.rejected)

    @property
    def schema_registry(self) -> SchemaResolver:
        """Where schema ids come from: the in-memory catalog registry, or ``registry=``."""
        assert self._registry is not None
        return self._registry

    def clear(self) -> None:
        """Forget what was published (between the steps of a test)."""
        self._broker.published.clear()
        self._broker.rejected.clear()

    # -- faults ---------------------------------------------------------------------------

    def deny(self, *topics: str) -> None:
        """Refuse the principal on ``topics``: ``send`` raises ``NotAuthorized`` naming the
        topic and the principal, and nothing of that call is published."""
        self._broker.denied.update(topics)

    def allow(self, *topics: str) -> None:
        """Undo :meth:`deny` for ``topics``."""
        self._broker.denied.difference_update(topics)

    def go_offline(self) -> None:
        """The broker becomes unreachable: events are spooled (``"spooled"``)."""
        self._broker.offline = True

    def go_online(self) -> None:
        """The broker is back: the spool is published, oldest first, and sends are direct."""
        self._broker.go_online()


class FakeProducer(Producer):
    """The blocking :class:`~lintas.producers.Producer` over a :class:`FakeEventProducer`.

    Takes the same arguments as ``FakeEventProducer``::

        producer = FakeProducer(app="perizinan", opd="dpmptsp")
        producer.send(izin_terbit)
        assert producer.published[0].event == izin_terbit
        producer.close()
    """

    _async_class: ClassVar[type[EventProducer]] = FakeEventProducer

    @property
    def _fake(self) -> FakeEventProducer:
        return cast(FakeEventProducer, self._producer)

    @property
    def published(self) -> list[PublishedEvent]:
        """See :attr:`FakeEventProducer.published`."""
        return self._fake.published

    @property
    def rejected(self) -> list[PublishedEvent]:
        """See :attr:`FakeEventProducer.rejected`."""
        return self._fake.rejected

    def clear(self) -> None:
        """See :meth:`FakeEventProducer.clear`."""
        self._fake.clear()

    def deny(self, *topics: str) -> None:
        """See :meth:`FakeEventProducer.deny`."""
        self._fake.deny(*topics)

    def allow(self, *topics: str) -> None:
        """See :meth:`FakeEventProducer.allow`."""
        self._fake.allow(*topics)

    def go_offline(self) -> None:
        """See :meth:`FakeEventProducer.go_offline`."""
        self._fake.go_offline()

    def go_online(self) -> None:
        """See :meth:`FakeEventProducer.go_online`."""
        self._fake.go_online()

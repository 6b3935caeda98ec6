"""One record in, one outcome out: validate (stage 1) and canonicalize (stage 3).

:class:`Processor` knows nothing of Kafka clients or faust: it turns a :class:`SourceRecord`
into an :class:`Accepted` canonical record or a :class:`Rejected` dead letter, so the worker,
the benchmark's baseline loop and the unit tests run the very same code. Checks, cheapest
first: size, CloudEvents headers, the topic's event type, the wire format and schema id, the
Avro body, the contract's patterns and the domain rules (:mod:`lintas.streams.rules`).

A record never raises out of :meth:`Processor.process`: anything it cannot make canonical
becomes a dead letter with its reason. Only a retriable platform fault (the registry is
unreachable) propagates, so the worker retries the batch instead of dead-lettering good
events.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from fastavro.read import SchemaResolutionError

from lintas.exceptions import LintasError
from lintas.schemas import (
    HEADER_SIZE,
    MAGIC_BYTE,
    AvroDeserializer,
    DeserializationError,
    EventType,
    UnknownSchemaId,
)
from lintas.schemas.registry import SchemaRegistryClient

from .canonical import CanonicalEncoder, Origin, canonical_record
from .dlq import Reason, dead_letter_headers, fit_dead_letter
from .envelope import CE_TIME, CE_TYPE, Envelope, names_event_type, read_envelope
from .eventtypes import EventTypeResolver
from .exceptions import RecordRejected
from .naming import StreamTopics
from .routing import Delivery, Router
from .rules import RuleContext, RuleSet, Violation, rules_for

__all__ = ["Accepted", "Outcome", "Output", "Processor", "Rejected", "SourceRecord"]

log = logging.getLogger(__name__)

_MAX_LISTED_VIOLATIONS = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceRecord:
    """A record as read from an OPD topic."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Output:
    """One record to produce."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Accepted:
    """A valid event, as the canonical record to produce.

    Attributes:
        dedup_key: ``<ce_source> <ce_id>``; the same event sent twice has the same key.
        event_id: ``ce_id``.
        event_type, opd: what it is, for the metrics.
        topic, key, value, headers: the canonical record.
        deliveries: the routed records for subscribers (stage 5).
    """

    dedup_key: str
    event_id: str
    event_type: str
    opd: str
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    deliveries: tuple[Delivery, ...] = ()

    def outputs(self) -> list[Output]:
        """Every record to produce for the event: the canonical one, then the deliveries."""
        first = Output(topic=self.topic, key=self.key, value=self.value, headers=self.headers)
        return [
            first,
            *(
                Output(topic=d.topic, key=d.key, value=d.value, headers=d.headers)
                for d in self.deliveries
            ),
        ]


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected:
    """A record that becomes a dead letter.

    Attributes:
        reason, field, message: why.
        event_type, opd: what the topic names (``None`` when it names nothing known).
        topic, key, value, headers: the dead letter to produce.
    """

    reason: Reason
    field: str | None
    message: str
    event_type: str | None
    opd: str | None
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    def outputs(self) -> list[Output]:
        """The dead letter, the one record to produce."""
        return [Output(topic=self.topic, key=self.key, value=self.value, headers=self.headers)]


Outcome = Accepted | Rejected


class Processor:
    """Validates and canonicalizes records of OPD topics.

    Args:
        registry: schema registry (writer schemas, new event types, canonical schemas).
        names: the topic names of this worker.
        max_record_bytes: larger records are dead-lettered as ``too_large``.
        future_skew: how far in the future a date may lie.
        retry_unknown_s: how long a topic without an event type is not asked about again.
        router: routes accepted events to subscribers (stage 5); ``None`` routes nothing.
    """

    def __init__(
        self,
        registry: SchemaRegistryClient,
        names: StreamTopics,
        *,
        max_record_bytes: int = 256 * 1024,
        future_skew: dt.timedelta = dt.timedelta(minutes=5),
        retry_unknown_s: float = 30.0,
        router: Router | None = None,
    ) -> None:
        self.names = names
        self.router = router
        self.event_types = EventTypeResolver(registry, names, retry_unknown_s=retry_unknown_s)
        self.encoder = CanonicalEncoder(registry, names)
        self._registry = registry
        self._max_record_bytes = max_record_bytes
        self._future_skew = future_skew
        self._deserializers: dict[str, AvroDeserializer] = {}
        self._rules: dict[str, RuleSet] = {}

    async def process(self, record: SourceRecord, *, now: dt.datetime) -> Outcome:
        """The outcome of one record; ``now`` (aware) is its ingest time.

        Raises:
            LintasError: only a retriable one (the registry is unreachable): try again later.
        """
        try:
            return await self._accept(record, now)
        except RecordRejected as exc:
            return self.reject(record, exc.reason, exc.detail, field=exc.field, now=now)
        except LintasError as exc:
            if exc.retriable:
                raise
            return self.reject(record, Reason.PROCESSING_ERROR, exc.message, now=now)
        except Exception as exc:  # a bug must cost one dead letter, never the stream
            log.exception(
                "unexpected error on %s:%s@%s", record.topic, record.partition, record.offset
            )
            detail = f"{type(exc).__name__}: {exc}"
            return self.reject(record, Reason.PROCESSING_ERROR, detail, now=now)

    def reject(
        self,
        record: SourceRecord,
        reason: Reason,
        message: str,
        *,
        field: str | None = None,
        now: dt.datetime,
    ) -> Rejected:
        """The dead letter of ``record``: its key, value and headers plus the explanation."""
        event_type = self.names.event_type_id(record.topic)
        opd = self.names.opd_of(record.topic)
        headers = dead_letter_headers(
            record.headers,
            reason=reason,
            message=message,
            field=field,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            now=now,
            event_type=event_type,
            opd=opd,
        )
        value, headers = fit_dead_letter(record.key, record.value, headers)
        return Rejected(
            reason=reason,
            field=field,
            message=message,
            event_type=event_type,
            opd=opd,
            topic=self.names.dlq,
            key=record.key,
            value=value,
            headers=headers,
        )

    async def _accept(self, record: SourceRecord, now: dt.datetime) -> Accepted:
        size = len(record.key or b"") + len(record.value or b"")
        if size > self._max_record_bytes:
            raise RecordRejected(
                Reason.TOO_LARGE,
                f"the record is {size} bytes; at most {self._max_record_bytes} are accepted",
            )
        ctx = RuleContext(now=now, future_skew=self._future_skew)
        envelope = read_envelope(record.headers, opd=self.names.opd_of(record.topic))
        event_type = await self.event_types.for_topic(record.topic)
        self._check_envelope(envelope, event_type, ctx)
        payload = await self._decode(event_type, record)
        violations = self._rules_of(event_type).check(payload, ctx)
        if violations:
            raise _rejection(violations)
        canonical = canonical_record(
            event_type,
            envelope,
            payload,
            origin=Origin(
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                timestamp_ms=record.timestamp_ms,
            ),
            key=record.key,
            ingest_time=now,
        )
        value = await self.encoder.encode(event_type, canonical)
        deliveries: list[Delivery] = []
        if self.router is not None:
            deliveries = await self.router.deliveries(
                event_type, envelope, payload, key=record.key, headers=record.headers
            )
        return Accepted(
            dedup_key=envelope.dedup_key,
            event_id=envelope.id,
            event_type=event_type.id,
            opd=event_type.opd,
            topic=self.names.canonical(event_type.id),
            key=record.key,
            value=value,
            headers=list(record.headers),
            deliveries=tuple(deliveries),
        )

    @staticmethod
    def _check_envelope(envelope: Envelope, event_type: EventType, ctx: RuleContext) -> None:
        if not names_event_type(envelope.type, event_type):
            raise RecordRejected(
                Reason.INVALID_ENVELOPE,
                f"ce_type {envelope.type!r} does not name the topic's event type {event_type.id}",
                field=CE_TYPE,
            )
        if envelope.time is not None and envelope.time > ctx.latest_instant:
            raise RecordRejected(
                Reason.FUTURE_DATE, f"{envelope.time.isoformat()} is in the future", field=CE_TIME
            )

    async def _decode(self, event_type: EventType, record: SourceRecord) -> dict[str, object]:
        deserializer = self._deserializers.get(event_type.id)
        if deserializer is None:
            deserializer = AvroDeserializer(self._registry, reader=event_type)
            self._deserializers[event_type.id] = deserializer
        value = record.value
        if value is None or len(value) < HEADER_SIZE or value[0] != MAGIC_BYTE:
            what = "no value" if value is None else f"{len(value)} bytes starting {value[:8]!r}"
            raise RecordRejected(
                Reason.WIRE_FORMAT,
                f"not Confluent-framed Avro (magic byte 0, 4-byte schema id): {what}",
            )
        try:
            return await deserializer.deserialize(
                value, topic=record.topic, partition=record.partition, offset=record.offset
            )
        except UnknownSchemaId as exc:
            raise RecordRejected(Reason.UNKNOWN_SCHEMA_ID, exc.message) from exc
        except DeserializationError as exc:
            if isinstance(exc.__cause__, SchemaResolutionError):
                raise RecordRejected(
                    Reason.SCHEMA_MISMATCH,
                    f"the writer schema cannot be read as {event_type.id}: {exc.__cause__}",
                ) from exc
            raise RecordRejected(Reason.UNDECODABLE, exc.message) from exc

    def _rules_of(self, event_type: EventType) -> RuleSet:
        rules = self._rules.get(event_type.id)
        if rules is None:
            rules = self._rules[event_type.id] = rules_for(event_type)
        return rules


def _rejection(violations: list[Violation]) -> RecordRejected:
    first = violations[0]
    listed = [
        v.message if v.field == first.field else f"{v.field}: {v.message}"
        for v in violations[:_MAX_LISTED_VIOLATIONS]
    ]
    more = len(violations) - len(listed)
    detail = "; ".join(listed) + (f" (and {more} more)" if more else "")
    return RecordRejected(first.reason, detail, field=first.field)

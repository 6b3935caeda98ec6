"""Value types of the producer SDK: what goes in (:class:`Event`) and what comes back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple, TypeAlias

from lintas.schemas import EventModel, EventType

__all__ = ["Delivery", "DeliveryStatus", "Event", "EventLike"]


class DeliveryStatus(StrEnum):
    """What happened to an event handed to ``send``."""

    SENT = "sent"
    """The broker acknowledged it (acks=all): it is in Kafka."""
    SPOOLED = "spooled"
    """It is on disk in the spool (fsync'd) and will be forwarded, in order, once the broker
    is reachable, also after a restart of the app."""


class Delivery(NamedTuple):
    """The outcome of one event.

    A named tuple (like aiokafka's ``RecordMetadata``): immutable, and cheap to build for
    every event of a large batch.

    Attributes:
        event_id: its CloudEvents id (``ce_id``), generated or given.
        topic: the topic it was or will be written to.
        status: :attr:`DeliveryStatus.SENT` or :attr:`DeliveryStatus.SPOOLED`
            (equal to the strings ``"sent"`` and ``"spooled"``).
        partition, offset: where Kafka stored it; ``None`` while spooled (and the offset
            when the broker reported a retry's duplicate without one).
    """

    event_id: str
    topic: str
    status: DeliveryStatus
    partition: int | None = None
    offset: int | None = None

    @property
    def sent(self) -> bool:
        return self.status is DeliveryStatus.SENT


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """An event to send, with the envelope attributes a caller may set.

    Usage::

        await producer.send_many([
            Event(data=kematian, id=idempotency_key),
            Event(data={"nik": ...}, event_type="dukcapil.kematian_dicatat.v1"),
        ])

    Attributes:
        data: a model from :func:`lintas.schemas.model_for` (already validated), or a dict
            validated against ``event_type``'s model.
        event_type: the event type of a dict (id such as ``dukcapil.kematian_dicatat.v1``);
            for a model it may be left out, or must match.
        id: CloudEvents ``id``; a uuid4 when unset. Give the same id when retrying an event
            whose ``send`` failed, so a copy that got through is recognised downstream.
        time: when it happened (``ce_time``, tz-aware); the time of the call when unset.
        subject: ``ce_subject``; the event's subject field (the NIK, the key) when unset.
        source: ``ce_source``; the producer's ``/opd/<opd>/<app>`` when unset (the gateway
            sets the calling app's).
        headers: extra Kafka headers; names starting with ``ce_`` and ``content-type`` are
            the envelope's and refused here.
    """

    data: EventModel | Mapping[str, Any]
    event_type: str | EventType | None = None
    id: str | None = None
    time: dt.datetime | None = None
    subject: str | None = None
    source: str | None = None
    headers: Mapping[str, bytes] | None = None


EventLike: TypeAlias = EventModel | Event
"""What ``send_many`` accepts: a catalog model, or an :class:`Event` wrapping one (or a dict)."""

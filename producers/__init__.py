"""Producing events: the Python producer SDK with a durable store-and-forward spool.

Usage (an OPD application)::

    from lintas.producers import EventProducer
    from lintas.schemas import model_for

    KematianDicatat = model_for("dukcapil.kematian_dicatat.v1")

    async with EventProducer(app="siak", opd="dukcapil") as producer:
        delivery = await producer.send(KematianDicatat(...))
        print(delivery.status, delivery.event_id)        # sent / spooled

The blocking :class:`Producer` does the same for scripts and Django/Flask apps. See
``docs/producer-sdk.md`` for configuration, the spool's guarantees and the errors.
"""

from ._admin import FlushResult, flush_spools, spool_status
from ._inspect import SpoolInfo
from ._producer import EventProducer, ProducerState, spool_root
from ._sync import Producer
from .exceptions import (
    DeliveryFailed,
    FlushTimeout,
    NotAuthenticated,
    NotAuthorized,
    ProducerClosed,
    ProducerError,
    SchemaUnavailable,
    SpoolFull,
    SpoolLocked,
    TopicNotFound,
    ValidationFailed,
)
from .metrics import ProducerMetrics
from .types import Delivery, DeliveryStatus, Event, EventLike

# Grouped by concern, as in aiokafka/__init__.py.
__all__ = [
    # producers
    "EventProducer",
    "Producer",
    "ProducerState",
    # values
    "Delivery",
    "DeliveryStatus",
    "Event",
    "EventLike",
    # metrics
    "ProducerMetrics",
    # spool administration
    "FlushResult",
    "SpoolInfo",
    "flush_spools",
    "spool_root",
    "spool_status",
    # errors
    "DeliveryFailed",
    "FlushTimeout",
    "NotAuthenticated",
    "NotAuthorized",
    "ProducerClosed",
    "ProducerError",
    "SchemaUnavailable",
    "SpoolFull",
    "SpoolLocked",
    "TopicNotFound",
    "ValidationFailed",
]

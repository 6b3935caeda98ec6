"""Errors raised by the producer SDK.

Tree (this component's part of :mod:`lintas.exceptions`)::

    LintasError
    └── ProducerError               something stopped an event from being handed over
        ├── ValidationFailed        the event breaks its contract; nothing was sent
        ├── SchemaUnavailable       the registry could not give the schema id (retriable)
        ├── SpoolFull               the broker is away and the spool has no room (retriable)
        ├── SpoolLocked             another process is using this spool
        ├── NotAuthorized           the broker refuses this principal on a topic
        │   └── NotAuthenticated    the broker refuses its credentials (wrong password)
        ├── TopicNotFound           the broker has no such topic (``lintas topics sync``)
        ├── DeliveryFailed          the broker refused a record for good
        ├── FlushTimeout            not everything reached the broker in time (retriable)
        └── ProducerClosed          the producer is not started, or already stopped

An event for which ``send`` raised is not promised to anyone: the app keeps it and may try
again (with the same event id, so a copy that did get through is recognised downstream).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lintas.exceptions import LintasError
from lintas.schemas import FieldError

if TYPE_CHECKING:
    from .types import Delivery

__all__ = [
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


class ProducerError(LintasError):
    """Base class for the errors of :mod:`lintas.producers`.

    Attributes:
        deliveries: for errors raised by ``send_many`` after part of the call went through:
            what happened to the events that did (sent or spooled); empty otherwise.
    """

    deliveries: tuple[Delivery, ...] = ()


class ValidationFailed(ProducerError):
    """An event does not fit its contract; nothing of the call was sent.

    Attributes:
        event_type: the event type id (``dukcapil.kematian_dicatat.v1``), or ``None`` when
            the event type itself is what is missing.
        errors: one :class:`~lintas.schemas.FieldError` per problem: field path, rule,
            message and the value received.
        index: position of the event in ``send_many``'s input (0 for ``send``).
    """

    def __init__(self, event_type: str | None, errors: Sequence[FieldError], *, index: int = 0):
        first = errors[0] if errors else None
        what = f"Event #{index} ({event_type or 'unknown type'})"
        if first is None:
            message = f"{what} is invalid."
        else:
            where = first["field"] or "the event"
            message = f"{what} is invalid: {where}: {first['message']} ({first['rule']})"
            if len(errors) > 1:
                message += f", and {len(errors) - 1} more problem(s)"
            message += "."
        super().__init__(message, hint="Fix the event; `errors` lists every problem.")
        self.event_type = event_type
        self.errors = list(errors)
        self.index = index


class SchemaUnavailable(ProducerError):
    """The schema id of an event type could not be had from the registry.

    Raised only when the id is not known yet: ids once learnt are kept in the spool, so a
    producer restarted while the network is down still encodes and spools.

    Attributes:
        subject: the registry subject (``opd.dukcapil.kematian_dicatat.v1-value``).
        reason: what the registry client said.
    """

    retriable = True

    def __init__(self, subject: str, reason: str, *, hint: str | None = None) -> None:
        super().__init__(
            f"The schema id of {subject} is unknown and the registry could not give it: {reason}.",
            hint=hint
            or "Check LINTAS_REGISTRY_URL and that the catalog is registered "
            "(`lintas schemas register`).",
        )
        self.subject = subject
        self.reason = reason


class SpoolFull(ProducerError):
    """The broker cannot be reached and the spool has no room for these events.

    Attributes:
        path: the spool file.
        used_bytes: bytes the spool holds now.
        limit_bytes: its bound (``LINTAS_PRODUCER__SPOOL_MAX_BYTES``).
        records: events it holds now.
        needed_bytes: bytes the refused events would have taken.
    """

    retriable = True

    def __init__(
        self, path: str, *, used_bytes: int, limit_bytes: int, records: int, needed_bytes: int
    ) -> None:
        super().__init__(
            f"The spool {path} is full: it holds {records} events in {used_bytes} bytes of "
            f"{limit_bytes}, and these events need {needed_bytes} more.",
            hint="The broker has been unreachable for a while: check the network, or raise "
            "LINTAS_PRODUCER__SPOOL_MAX_BYTES; `lintas spool status` shows every spool.",
        )
        self.path = path
        self.used_bytes = used_bytes
        self.limit_bytes = limit_bytes
        self.records = records
        self.needed_bytes = needed_bytes


class SpoolLocked(ProducerError):
    """Another process holds this spool (a spool is forwarded by one process at a time).

    Attributes:
        path: the spool file.
        pid: the process holding it, when known.
    """

    def __init__(self, path: str, pid: int | None) -> None:
        who = f"process {pid}" if pid else "another process"
        super().__init__(
            f"The spool {path} is in use by {who}.",
            hint="That producer forwards its spool itself; wait for it, or stop it first.",
        )
        self.path = path
        self.pid = pid


class NotAuthorized(ProducerError):
    """The broker refuses this producer's principal on a topic (or the cluster).

    Not retried and not spooled: the ACLs must change first (``lintas apps``).

    Attributes:
        topic: the refused topic, or ``None`` when the refusal is cluster-wide (no right
            to produce idempotently at all).
        principal: the Kafka principal (``User:dinkes-simpus``).
    """

    def __init__(
        self, topic: str | None, principal: str, *, deliveries: Sequence[Delivery] = ()
    ) -> None:
        target = f"topic {topic}" if topic else "the cluster (idempotent write)"
        super().__init__(
            f"Kafka refuses {principal} on {target}.",
            hint="An application may publish only its own OPD's event types; ask the "
            "platform team to check its ACLs.",
        )
        self.topic = topic
        self.principal = principal
        self.deliveries = tuple(deliveries)


class NotAuthenticated(NotAuthorized):
    """The broker refuses the producer's credentials (a wrong, replaced or revoked password).

    Not retried and not spooled, like every refusal: the credentials must change first.
    """

    def __init__(self, principal: str) -> None:
        ProducerError.__init__(
            self,
            f"Kafka refuses the credentials of {principal}: authentication failed.",
            hint="The password is wrong, was replaced or was revoked; ask the platform team "
            "for the current one (`lintas apps kafka-password`).",
        )
        self.topic = None
        self.principal = principal
        self.deliveries = ()


class TopicNotFound(ProducerError):
    """The broker answers but has no such topic; topics are never created on the fly.

    Attributes:
        topic: the missing topic.
    """

    def __init__(self, topic: str) -> None:
        super().__init__(
            f"Topic {topic} does not exist on the broker.",
            hint="Run `lintas topics sync` (or `lintas schemas register`) to create it.",
        )
        self.topic = topic


class DeliveryFailed(ProducerError):
    """The broker refused a record for good (too large, corrupt, ...); it is not spooled.

    Attributes:
        topic: where it was going.
        event_id: its CloudEvents id.
        reason: the broker's error.
    """

    def __init__(
        self, topic: str, event_id: str, reason: str, *, deliveries: Sequence[Delivery] = ()
    ) -> None:
        super().__init__(f"Kafka refused event {event_id} on {topic}: {reason}.")
        self.topic = topic
        self.event_id = event_id
        self.reason = reason
        self.deliveries = tuple(deliveries)


class FlushTimeout(ProducerError):
    """``flush`` ran out of time: events are still in flight or in the spool.

    Nothing is lost: spooled events stay on disk and are forwarded once the broker is back.

    Attributes:
        timeout: the time allowed, in seconds.
        in_flight: events handed to Kafka and not yet acknowledged.
        spooled: events waiting in the spool.
    """

    retriable = True

    def __init__(self, timeout: float, *, in_flight: int, spooled: int) -> None:
        super().__init__(
            f"Not everything reached Kafka within {timeout:g} s: {in_flight} events in "
            f"flight, {spooled} in the spool.",
            hint="The spool keeps them; they are forwarded when the broker is reachable.",
        )
        self.timeout = timeout
        self.in_flight = in_flight
        self.spooled = spooled


class ProducerClosed(ProducerError):
    """The producer is not started, or already stopped.

    Attributes:
        state: its lifecycle state (``new``, ``stopped``).
    """

    def __init__(self, state: str) -> None:
        super().__init__(
            f"The producer is {state}.",
            hint="Use `async with EventProducer(...)`, or call `await producer.start()`.",
        )
        self.state = state

"""From events read off a request to a 202 answer: check, remember the key, publish.

The steps, in order (each one's error names the events and rules involved):

1. **check** every event (:func:`check_events`): the event type exists, the application
   may publish it (its own OPD's types, and only those it is registered to produce), the
   data fits the contract (the catalog's pydantic model: every violation with its path,
   rule and value), the envelope attributes are usable. All-or-nothing by default: one bad
   event refuses the request; with ``partial`` the good ones go on and the rest are
   reported by index.
2. **claim** the idempotency key, if the request has one; a key answered before returns
   that answer and nothing is published.
3. **rate limit**: the application's token bucket pays for the events to publish.
4. **publish** through the gateway's one :class:`~lintas.producers.EventProducer`, with each
   event's ``ce_source`` set to the calling application's ``/opd/<opd>/<app>``. The answer
   comes once the broker acknowledged every event (``sent``) or the producer's spool has it
   on disk (``spooled``); publishing is shielded from the request's timeout, so a slow
   request never leaves events half-handed-over.
5. **remember** the answer for the key.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
from pydantic import ValidationError

from lintas.schemas import Catalog, EventType, FieldError, UnknownEventType, field_errors, model_for
from lintas.settings import GatewaySettings

from .._envelope import check_event_id
from .._producer import EventProducer
from ..exceptions import ValidationFailed
from ..types import Delivery, Event
from .auth import Caller
from .exceptions import (
    EventsInvalid,
    EventTypeNotPermitted,
    InvalidEvent,
    PublishTimedOut,
    RateLimited,
)
from .formats import BodyKind, RawEvent
from .idempotency import IdempotencyStore, event_id_for
from .limits import RateLimiter
from .metrics import GatewayMetrics

__all__ = ["Answer", "Checked", "Ingestor", "check_events", "request_key"]

log = logging.getLogger("lintas.gateway")

NOT_PERMITTED = "not_permitted"


@dataclass(slots=True)
class Checked:
    """The events of a request after checking: those to publish and those refused."""

    accepted: list[tuple[int, Event]] = field(default_factory=list)
    invalid: list[InvalidEvent] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    """``(event type id, why)`` of events the application may not publish."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What the gateway answers: the status, the JSON body, and whether it is a replay.

    The body is kept as the bytes sent, so a replay repeats the first answer byte for byte.
    """

    status_code: int
    body: bytes
    replayed: bool = False


def request_key(header: str | None, kind: BodyKind, raws: Sequence[RawEvent]) -> str | None:
    """The idempotency key of a request: the header's, else one made of CloudEvents ids.

    A single CloudEvent's key is ``ce:<id>``; a CloudEvents batch's is made of its ids in
    order, so retrying the same batch gets the first answer.
    """
    if header is not None:
        return header
    if kind is not BodyKind.CLOUDEVENTS:
        return None
    if len(raws) == 1 and raws[0].id:
        return f"ce:{raws[0].id}"
    ids = "\n".join(raw.id or "" for raw in raws)
    return "ce-batch:" + hashlib.sha256(ids.encode()).hexdigest()


def check_events(
    caller: Caller, raws: Sequence[RawEvent], catalog: Catalog, *, key: str | None
) -> Checked:
    """Check every event of a request against its contract and the caller's rights.

    Args:
        caller: the authenticated application.
        raws: the events as read from the body.
        catalog: the contract catalog.
        key: the request's idempotency key; events without an id of their own get one
            derived from it (:func:`~.idempotency.event_id_for`).
    """
    checked = Checked()
    app = caller.app
    for raw in raws:
        problems = list(raw.problems)
        event_type = _event_type(raw, catalog, problems)
        if event_type is not None:
            why = None
            if event_type.opd != app.opd:
                why = "other_opd"
            elif event_type.id not in app.produces:
                why = "not_registered"
            if why is not None:
                checked.refused.append((event_type.id, why))
                checked.invalid.append(
                    InvalidEvent(
                        raw.index,
                        event_type.id,
                        [_refusal(event_type.id, why, app.id, app.opd)],
                        permission=True,
                    )
                )
                continue
        if raw.source is not None and raw.source != caller.source:
            problems.append(
                FieldError(
                    field="source",
                    rule="cloudevents_source",
                    message=f"must be {caller.source}, the authenticated application",
                    value=raw.source,
                )
            )
        if raw.id is not None and (why_id := check_event_id(raw.id)):
            problems.append(
                FieldError(field="id", rule="cloudevents_id", message=why_id, value=raw.id)
            )
        model = None
        if event_type is not None and isinstance(raw.data, dict):
            try:
                model = model_for(event_type).model_validate(raw.data)
            except ValidationError as exc:
                for error in field_errors(exc):
                    path = error["field"]
                    error["field"] = f"{raw.prefix}{path}" if path else raw.prefix.rstrip(".")
                    problems.append(error)
        if problems or model is None or event_type is None:
            checked.invalid.append(
                InvalidEvent(raw.index, event_type.id if event_type else raw.event_type, problems)
            )
            continue
        event_id = raw.id or (event_id_for(app.id, key, raw.index) if key else None)
        event = Event(
            data=model,
            event_type=event_type,
            id=event_id,
            time=raw.time,
            subject=raw.subject,
            source=caller.source,
        )
        checked.accepted.append((raw.index, event))
    return checked


def _event_type(raw: RawEvent, catalog: Catalog, problems: list[FieldError]) -> EventType | None:
    name = raw.event_type
    if name is None:
        return None
    where = raw.type_field
    try:
        event_type = catalog.get(name)
    except UnknownEventType as exc:
        problems.append(
            FieldError(field=where, rule="unknown_event_type", message=exc.message, value=name)
        )
        return None
    if event_type.id != name:
        # Topics, subjects and versionless names resolve in the catalog, but a client must
        # say exactly which contract it writes: a new major would otherwise change under it.
        problems.append(
            FieldError(
                field=where,
                rule="unknown_event_type",
                message=f"name the event type by its id, {event_type.id}",
                value=name,
            )
        )
        return None
    return event_type


def _refusal(type_id: str, why: str, app_id: str, opd: str) -> FieldError:
    if why == "other_opd":
        message = f"application {app_id} of OPD {opd} may publish only {opd}.* event types"
    else:
        message = f"application {app_id} of OPD {opd} is not registered to produce {type_id}"
    return FieldError(field="event_type", rule=NOT_PERMITTED, message=message, value=type_id)


class Ingestor:
    """Checks, publishes and remembers the events of requests.

    Args:
        producer: the gateway's one producer (started).
        settings: the gateway's settings.
        catalog: the contract catalog.
        limiter: per-application rate limits.
        metrics: where to count.
        store: idempotency keys; ``None`` turns idempotency off (the benchmark).
    """

    def __init__(
        self,
        producer: EventProducer,
        *,
        settings: GatewaySettings,
        catalog: Catalog,
        limiter: RateLimiter,
        metrics: GatewayMetrics,
        store: IdempotencyStore | None,
    ) -> None:
        self._producer = producer
        self._settings = settings
        self._catalog = catalog
        self._limiter = limiter
        self._metrics = metrics
        self._store = store
        self._background: set[asyncio.Task[Answer]] = set()

    def check(self, caller: Caller, raws: Sequence[RawEvent], *, key: str | None) -> Checked:
        """See :func:`check_events`."""
        return check_events(caller, raws, self._catalog, key=key)

    async def ingest(
        self,
        caller: Caller,
        raws: Sequence[RawEvent],
        *,
        single: bool,
        partial: bool,
        key: str | None,
        print_: bytes,
        deadline: float,
    ) -> Answer:
        """Check, claim, limit, publish and remember; the answer to give.

        Args:
            caller: the authenticated application.
            raws: the events read from the body.
            single: the request is one event (its answer is flat, not a list).
            partial: publish the valid events of a batch and report the rest.
            key: the idempotency key (:func:`request_key`), if any.
            print_: the request's fingerprint (:func:`~.idempotency.fingerprint`).
            deadline: loop time by which to answer.

        Raises:
            EventTypeNotPermitted, EventsInvalid: nothing is published.
            RateLimited, IdempotencyKeyInUse, IdempotencyKeyReused, IdempotencyUnavailable,
            PublishTimedOut: see :mod:`.exceptions`.
            ProducerError: the producer could not take the events (spool full, ...).
        """
        checked = self.check(caller, raws, key=key)
        app_id = caller.app.id
        if checked.invalid:
            self._metrics.events.labels(app_id, "invalid").inc(
                sum(1 for i in checked.invalid if not i.permission)
            )
            self._metrics.events.labels(app_id, "refused").inc(len(checked.refused))
        if not checked.accepted or (checked.invalid and not partial):
            if checked.refused and (single or not partial or len(checked.refused) == len(raws)):
                raise EventTypeNotPermitted(app_id, caller.app.opd, checked.refused)
            raise EventsInvalid(checked.invalid, len(raws))
        if key is not None and self._store is not None:
            prior = await self._store.claim(app_id, key, print_)
            if prior is not None:
                self._metrics.replays.labels(app_id).inc()
                return Answer(prior.status_code, prior.body, replayed=True)
        try:
            self._limiter.take(app_id, len(checked.accepted))
        except RateLimited:
            self._metrics.rate_limited.labels(app_id).inc()
            await self._release(app_id, key)
            raise
        task = asyncio.ensure_future(
            self._publish(caller, checked, single=single, partial=partial, key=key)
        )
        self._background.add(task)
        task.add_done_callback(self._done)
        try:
            async with asyncio.timeout_at(deadline):
                return await asyncio.shield(task)
        except TimeoutError:
            raise PublishTimedOut(self._settings.request_timeout_s) from None

    def _done(self, task: asyncio.Task[Answer]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Retrieved here so an answer given after a timeout never logs "never retrieved";
            # the request that waited for it (if any) got the same exception.
            log.debug("publishing ended with %r", task.exception())

    async def drain(self, timeout: float) -> None:
        """Wait (up to ``timeout``) for publishing that outlived its request."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=timeout)

    async def _publish(
        self, caller: Caller, checked: Checked, *, single: bool, partial: bool, key: str | None
    ) -> Answer:
        app_id = caller.app.id
        accepted, invalid = list(checked.accepted), list(checked.invalid)
        total = len(accepted) + len(invalid)
        try:
            while True:
                try:
                    deliveries = await self._producer.send_many([e for _, e in accepted])
                    break
                except ValidationFailed as exc:
                    # The model took it but Avro did not (an encoding limit, such as the
                    # record size); nothing was sent. With partial, drop it and go on.
                    index, _ = accepted.pop(exc.index)
                    invalid.append(InvalidEvent(index, exc.event_type, list(exc.errors)))
                    self._metrics.events.labels(app_id, "invalid").inc()
                    if not partial or not accepted:
                        raise EventsInvalid(invalid, total) from None
        except BaseException:
            await self._release(app_id, key)
            raise
        answer = _answer(accepted, deliveries, invalid, single=single)
        sent = sum(1 for d in deliveries if d.sent)
        if sent:
            self._metrics.events.labels(app_id, "sent").inc(sent)
        if len(deliveries) - sent:
            self._metrics.events.labels(app_id, "spooled").inc(len(deliveries) - sent)
        if key is not None and self._store is not None:
            try:
                await self._store.complete(app_id, key, answer.status_code, answer.body)
            except Exception as exc:  # the events are in; only the replay is at risk
                log.warning("answer for idempotency key %r of %s not stored: %s", key, app_id, exc)
        return answer

    async def _release(self, app_id: str, key: str | None) -> None:
        if key is not None and self._store is not None:
            await self._store.release(app_id, key)


def _type_id(event: Event) -> str:
    event_type = event.event_type
    return event_type.id if isinstance(event_type, EventType) else str(event_type)


def _answer(
    accepted: Sequence[tuple[int, Event]],
    deliveries: Sequence[Delivery],
    invalid: Sequence[InvalidEvent],
    *,
    single: bool,
) -> Answer:
    events = [
        {
            "index": index,
            "id": delivery.event_id,
            "event_type": _type_id(event),
            "status": str(delivery.status),
        }
        for (index, event), delivery in zip(accepted, deliveries, strict=True)
    ]
    if single:
        first = events[0]
        body = {"id": first["id"], "event_type": first["event_type"], "status": first["status"]}
        return Answer(202, orjson.dumps(body))
    return Answer(
        202,
        orjson.dumps(
            {
                "accepted": len(events),
                "rejected": len(invalid),
                "events": events,
                "errors": [i.as_json() for i in sorted(invalid, key=lambda i: i.index)],
            }
        ),
    )

"""Errors of the HTTP ingest gateway, in domain terms (no HTTP here: see :mod:`.errors`).

Tree (this component's part of :mod:`lintas.exceptions`)::

    LintasError
    └── GatewayError                 a request could not be taken as it is
        ├── Unauthenticated          no usable API key (missing, malformed, unknown, revoked)
        ├── EventTypeNotPermitted    the app may not publish this event type
        ├── UnknownEventTypeName     the path names an event type not in the catalog
        ├── MalformedRequest         the body or a header cannot be read (not JSON, ...)
        ├── UnsupportedContentType   a Content-Type this endpoint does not take
        ├── PayloadTooLarge          the body is over ``max_body_bytes``
        ├── BatchTooLarge            more events than ``max_batch_events``
        ├── EventsInvalid            events break their contracts (every problem listed)
        ├── RateLimited              the app is over its rate; ``retry_after`` seconds
        ├── RequestTimedOut          the body did not arrive within the request timeout
        ├── PublishTimedOut          events handed over, not yet acknowledged or spooled
        ├── IdempotencyKeyInUse      the first request with this key is still being handled
        ├── IdempotencyKeyReused     the key was used before for a different request
        └── IdempotencyUnavailable   the database that remembers keys is unreachable

Errors of the producer SDK (``SpoolFull``, ``SchemaUnavailable``, ...) pass through as they
are; :mod:`.errors` maps both to responses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lintas.exceptions import LintasError
from lintas.schemas import FieldError

__all__ = [
    "BatchTooLarge",
    "EventTypeNotPermitted",
    "EventsInvalid",
    "GatewayError",
    "IdempotencyKeyInUse",
    "IdempotencyKeyReused",
    "IdempotencyUnavailable",
    "InvalidEvent",
    "MalformedRequest",
    "PayloadTooLarge",
    "PublishTimedOut",
    "RateLimited",
    "RequestTimedOut",
    "Unauthenticated",
    "UnknownEventTypeName",
    "UnsupportedContentType",
]


class GatewayError(LintasError):
    """Base class of the gateway's errors."""


class Unauthenticated(GatewayError):
    """The request carries no API key that authenticates.

    Attributes:
        reason: safe to show the caller (``missing``, ``key revoked``, ...).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"API key refused: {reason}.",
            hint="Send `Authorization: Bearer <api key>` with the key issued by "
            "`lintas apps add` or `lintas apps rotate-key`.",
        )
        self.reason = reason


class EventTypeNotPermitted(GatewayError):
    """The application may not publish these event types.

    Attributes:
        app_id: the authenticated application.
        opd: its OPD.
        event_types: the refused event type ids, each with why (``other_opd`` or
            ``not_registered``).
    """

    def __init__(self, app_id: str, opd: str, refused: Sequence[tuple[str, str]]) -> None:
        first, why = refused[0]
        if why == "other_opd":
            message = (
                f"Application {app_id} of OPD {opd} may not publish {first}: an application "
                f"publishes only its own OPD's event types ({opd}.*)."
            )
        else:
            message = f"Application {app_id} of OPD {opd} is not registered to produce {first}."
        if len(refused) > 1:
            message += f" {len(refused) - 1} more event(s) of the request are refused too."
        hint = (
            "Publish these events from an application of their own OPD."
            if why == "other_opd"
            else "The platform team registers what an application produces "
            "(`lintas apps update <app> --produces <event type>`)."
        )
        super().__init__(message, hint=hint)
        self.app_id = app_id
        self.opd = opd
        self.refused = list(refused)


class UnknownEventTypeName(GatewayError):
    """The event type named in the path is not in the catalog.

    Attributes:
        name: what the path said.
        suggestions: the closest event type ids.
    """

    def __init__(self, name: str, suggestions: Sequence[str]) -> None:
        hint = f"Did you mean {', '.join(suggestions)}?" if suggestions else None
        super().__init__(f"There is no event type {name!r} in the catalog.", hint=hint)
        self.name = name
        self.suggestions = list(suggestions)


class MalformedRequest(GatewayError):
    """The request cannot be read: the body is not JSON, a header is malformed, ...

    Attributes:
        where: what could not be read (``body``, ``line 3``, ``Idempotency-Key``).
        reason: why.
    """

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"Cannot read the request ({where}): {reason}.")
        self.where = where
        self.reason = reason


class UnsupportedContentType(GatewayError):
    """The endpoint does not take this ``Content-Type``.

    Attributes:
        content_type: what the request said.
        supported: what the endpoint takes.
    """

    def __init__(self, content_type: str, supported: Sequence[str]) -> None:
        super().__init__(
            f"Content-Type {content_type or '(none)'!s} is not supported here; "
            f"use one of {', '.join(supported)}."
        )
        self.content_type = content_type
        self.supported = list(supported)


class PayloadTooLarge(GatewayError):
    """The body is larger than allowed.

    Attributes:
        limit: the limit in bytes (``LINTAS_GATEWAY__MAX_BODY_BYTES``).
    """

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The request body is larger than {limit} bytes.",
            hint="Split the events over several batch requests.",
        )
        self.limit = limit


class BatchTooLarge(GatewayError):
    """More events in one batch than allowed.

    Attributes:
        count: events in the request.
        limit: the most allowed (``LINTAS_GATEWAY__MAX_BATCH_EVENTS``).
    """

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(
            f"The batch holds {count} events; at most {limit} are taken per request.",
            hint="Split the events over several batch requests.",
        )
        self.count = count
        self.limit = limit


@dataclass(frozen=True, slots=True)
class InvalidEvent:
    """The problems of one event of a request.

    Attributes:
        index: its position in the request (0 for a single event).
        event_type: its event type id, when known.
        errors: every problem: field path, rule, message, value received.
        permission: True when the problem is that the app may not publish it.
    """

    index: int
    event_type: str | None
    errors: list[FieldError] = field(default_factory=list)
    permission: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "event_type": self.event_type, "errors": self.errors}


class EventsInvalid(GatewayError):
    """Events break their contracts; nothing of the request was published.

    Attributes:
        invalid: each invalid event with all of its problems.
        total: events in the request.
    """

    def __init__(self, invalid: Sequence[InvalidEvent], total: int) -> None:
        count = sum(len(i.errors) for i in invalid)
        super().__init__(
            f"{len(invalid)} of {total} event(s) are invalid ({count} problem(s)); "
            "nothing was published.",
            hint="Fix the events; `errors` lists every problem with its field and rule.",
        )
        self.invalid = list(invalid)
        self.total = total


class RateLimited(GatewayError):
    """The application sends faster than it may.

    Attributes:
        app_id: the application.
        retry_after: seconds until the request would pass.
    """

    retriable = True

    def __init__(self, app_id: str, retry_after: int, *, rate: float) -> None:
        super().__init__(
            f"Application {app_id} is over its rate limit of {rate:g} events/s.",
            hint=f"Retry after {retry_after} s.",
        )
        self.app_id = app_id
        self.retry_after = retry_after
        self.rate = rate


class RequestTimedOut(GatewayError):
    """The request body did not arrive within the request timeout.

    Attributes:
        timeout: the limit in seconds.
    """

    retriable = True

    def __init__(self, timeout: float) -> None:
        super().__init__(f"The request body did not arrive within {timeout:g} s.")
        self.timeout = timeout


class PublishTimedOut(GatewayError):
    """The events were handed to the producer but not acknowledged or spooled in time.

    They may still reach Kafka (the producer is not interrupted); a retry with the same
    Idempotency-Key gets their answer once it is known, and carries the same event ids.

    Attributes:
        timeout: the request timeout in seconds.
    """

    retriable = True

    def __init__(self, timeout: float) -> None:
        super().__init__(
            f"The events were not acknowledged or spooled within {timeout:g} s.",
            hint="Retry with the same Idempotency-Key: it returns the first answer once "
            "known, and publishes nothing twice.",
        )
        self.timeout = timeout


class IdempotencyKeyInUse(GatewayError):
    """A request with the same key is still being handled; its answer is not known yet.

    Attributes:
        key: the idempotency key.
    """

    retriable = True

    def __init__(self, key: str) -> None:
        super().__init__(
            f"A request with Idempotency-Key {key!r} is still being handled.",
            hint="Retry shortly with the same key to get its answer.",
        )
        self.key = key


class IdempotencyKeyReused(GatewayError):
    """The key was used within its lifetime for a different request.

    Attributes:
        key: the idempotency key.
    """

    def __init__(self, key: str) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was already used for a different request.",
            hint="Use a new key for every new request; reuse a key only to retry the very "
            "same request.",
        )
        self.key = key


class IdempotencyUnavailable(GatewayError):
    """The database that remembers idempotency keys cannot be reached.

    A request with a key is refused rather than risk publishing it twice.

    Attributes:
        reason: what the database client said.
    """

    retriable = True

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"Idempotency keys cannot be checked now: {reason}.",
            hint="Retry later with the same key.",
        )
        self.reason = reason

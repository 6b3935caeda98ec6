"""Errors to HTTP answers: RFC 9457 problem details, one ``code`` per kind of error.

Every error answer is ``application/problem+json``::

    {"type": "urn:lintas:gateway:validation_failed", "title": "Events are invalid",
     "status": 422, "code": "validation_failed", "detail": "...", "hint": "...",
     "errors": [...]}

Status codes (docs/gateway.md has the table for OPD developers):

=====  ===========================  ===================================================
400    malformed_request            the body is not JSON, a header is malformed
401    unauthenticated              no API key, or one the directory refuses
403    event_type_not_permitted     another OPD's event type, or one the app is not
                                    registered to produce
404    unknown_event_type           the path names no event type of the catalog
408    request_timeout              the body did not arrive in time
409    idempotency_key_in_use       the first request with this key is still running
413    payload_too_large            body over the size limit, or too many events
415    unsupported_media_type       a Content-Type the endpoint does not take
422    validation_failed            events break their contracts (every problem listed)
422    idempotency_key_reused       the key was used for a different request
429    rate_limited                 over the app's rate limit (``Retry-After``)
502    refused_by_broker            Kafka refused an event for good
503    unavailable                  cannot take events now: spool full, schema registry
                                    or database away, directory not read yet, shutting
                                    down (``Retry-After``)
=====  ===========================  ===================================================

A broker outage is not an error: events go to the gateway's spool and the answer is 202
with status ``spooled``. A 5xx answer never means an event was half taken: events listed
in its ``events`` (if any) were acknowledged or spooled, the others were not.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.responses import Response

from lintas.directory import DirectoryUnavailable
from lintas.exceptions import LintasError

from ..exceptions import (
    DeliveryFailed,
    NotAuthorized,
    ProducerClosed,
    ProducerError,
    SchemaUnavailable,
    SpoolFull,
    TopicNotFound,
)
from .exceptions import (
    BatchTooLarge,
    EventsInvalid,
    EventTypeNotPermitted,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    IdempotencyUnavailable,
    MalformedRequest,
    PayloadTooLarge,
    PublishTimedOut,
    RateLimited,
    RequestTimedOut,
    Unauthenticated,
    UnknownEventTypeName,
    UnsupportedContentType,
)

__all__ = ["PROBLEM_JSON", "json_response", "problem", "problem_for"]

log = logging.getLogger("lintas.gateway")

PROBLEM_JSON = "application/problem+json"

# A full spool means the broker has been away a while: ask clients to come back later
# than for a momentary problem.
_SPOOL_FULL_RETRY_S = 60
_TITLES = {
    "malformed_request": "The request cannot be read",
    "unauthenticated": "Not authenticated",
    "event_type_not_permitted": "Event type not permitted",
    "unknown_event_type": "Unknown event type",
    "request_timeout": "Request timeout",
    "idempotency_key_in_use": "Idempotency key in use",
    "payload_too_large": "Payload too large",
    "unsupported_media_type": "Unsupported media type",
    "validation_failed": "Events are invalid",
    "idempotency_key_reused": "Idempotency key reused",
    "rate_limited": "Rate limit exceeded",
    "refused_by_broker": "Refused by the broker",
    "unavailable": "Cannot take events now",
    "internal_error": "Internal error",
    "not_found": "Not found",
    "method_not_allowed": "Method not allowed",
}


def json_response(
    status_code: int,
    body: Any,
    *,
    headers: dict[str, str] | None = None,
    media_type: str = "application/json",
) -> Response:
    """A JSON response serialised with orjson."""
    return Response(
        orjson.dumps(body), status_code=status_code, headers=headers, media_type=media_type
    )


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    hint: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """A problem details answer."""
    body: dict[str, Any] = {
        "type": f"urn:lintas:gateway:{code}",
        "title": _TITLES.get(code, code.replace("_", " ").capitalize()),
        "status": status,
        "code": code,
        "detail": detail,
    }
    if hint:
        body["hint"] = hint
    body.update(extra)
    return json_response(status, body, headers=headers, media_type=PROBLEM_JSON)


def problem_for(exc: BaseException, *, single: bool, retry_after: int) -> Response:
    """The answer for an error raised while handling a request.

    Args:
        exc: the error.
        single: the request was one event (validation errors are then listed flat).
        retry_after: seconds for ``Retry-After`` on 503 answers.
    """
    if not isinstance(exc, LintasError):
        log.error("unexpected error handling a request", exc_info=exc)
        return problem(500, "internal_error", "The gateway failed; the error is in its log.")
    later = {"Retry-After": str(retry_after)}
    match exc:
        case Unauthenticated():
            return problem(
                401,
                "unauthenticated",
                exc.message,
                hint=exc.hint,
                headers={"WWW-Authenticate": 'Bearer realm="lintas", error="invalid_token"'},
                reason=exc.reason,
            )
        case EventTypeNotPermitted():
            refused = [{"event_type": t, "reason": why} for t, why in exc.refused]
            return problem(
                403,
                "event_type_not_permitted",
                exc.message,
                hint=exc.hint,
                app=exc.app_id,
                opd=exc.opd,
                refused=refused,
            )
        case UnknownEventTypeName():
            return problem(
                404, "unknown_event_type", exc.message, hint=exc.hint, suggestions=exc.suggestions
            )
        case MalformedRequest():
            return problem(400, "malformed_request", exc.message, where=exc.where)
        case UnsupportedContentType():
            return problem(415, "unsupported_media_type", exc.message, supported=exc.supported)
        case PayloadTooLarge():
            return problem(413, "payload_too_large", exc.message, hint=exc.hint, limit=exc.limit)
        case BatchTooLarge():
            return problem(413, "payload_too_large", exc.message, hint=exc.hint, limit=exc.limit)
        case EventsInvalid():
            if single and exc.invalid:
                first = exc.invalid[0]
                return problem(
                    422,
                    "validation_failed",
                    exc.message,
                    hint=exc.hint,
                    event_type=first.event_type,
                    errors=first.errors,
                )
            return problem(
                422,
                "validation_failed",
                exc.message,
                hint=exc.hint,
                errors=[i.as_json() for i in sorted(exc.invalid, key=lambda i: i.index)],
            )
        case RateLimited():
            return problem(
                429,
                "rate_limited",
                exc.message,
                hint=exc.hint,
                headers={"Retry-After": str(exc.retry_after)},
                retry_after=exc.retry_after,
            )
        case RequestTimedOut():
            return problem(408, "request_timeout", exc.message, headers={"Connection": "close"})
        case IdempotencyKeyInUse():
            return problem(
                409, "idempotency_key_in_use", exc.message, hint=exc.hint,
                headers={"Retry-After": "1"},
            )  # fmt: skip
        case IdempotencyKeyReused():
            return problem(422, "idempotency_key_reused", exc.message, hint=exc.hint)
        case (
            IdempotencyUnavailable()
            | PublishTimedOut()
            | SchemaUnavailable()
            | DirectoryUnavailable()
        ):
            return problem(503, "unavailable", exc.message, hint=exc.hint, headers=later)
        case SpoolFull():
            return problem(
                503,
                "unavailable",
                "Kafka has been unreachable for a while and the gateway's spool is full.",
                hint="Retry later; the platform team is alerted by lintas_producer_spool_bytes.",
                headers={"Retry-After": str(max(retry_after, _SPOOL_FULL_RETRY_S))},
                **_delivered(exc),
            )
        case NotAuthorized() | TopicNotFound() | ProducerClosed():
            # The platform's own configuration (ACLs, topics) or a restart: not the
            # client's fault, and it may pass once the platform team has acted.
            return problem(
                503, "unavailable", exc.message, hint=exc.hint, headers=later, **_delivered(exc)
            )
        case DeliveryFailed():
            return problem(502, "refused_by_broker", exc.message, **_delivered(exc))
        case ProducerError():
            return problem(503, "unavailable", exc.message, headers=later, **_delivered(exc))
    log.error("unmapped gateway error", exc_info=exc)
    return problem(500, "internal_error", "The gateway failed; the error is in its log.")


def _delivered(exc: ProducerError) -> dict[str, Any]:
    if not exc.deliveries:
        return {}
    events = [{"id": d.event_id, "status": str(d.status)} for d in exc.deliveries]
    return {"events": events}

"""Errors of the webhook deliverer.

Tree (this component's part of :mod:`lintas.exceptions`)::

    LintasError
    └── WebhookError                  something about webhook delivery went wrong
        ├── DeliveryFailed            one POST did not deliver the event
        │   ├── EndpointUnreachable   no connection (refused, reset, DNS)       retriable
        │   ├── EndpointTimeout       no answer within the request timeout      retriable
        │   ├── EndpointError         a 5xx answer                              retriable
        │   ├── EndpointThrottled     a 429 answer (``retry_after`` honoured)   retriable
        │   └── EndpointRejected      any other non-2xx answer (4xx, 3xx)       not retriable
        ├── NoSigningSecret           the subscriber has no valid secret to sign with  retriable
        └── NotAWebhookSubscriber     a command names a subscriber without a webhook

The dispatcher reads ``retriable``: a retriable failure is tried again with backoff until the
event's deadline, anything else sends the event to the subscriber's dead-letter topic at once.
"""

from __future__ import annotations

from lintas.exceptions import LintasError

__all__ = [
    "DeliveryFailed",
    "EndpointError",
    "EndpointRejected",
    "EndpointThrottled",
    "EndpointTimeout",
    "EndpointUnreachable",
    "NoSigningSecret",
    "NotAWebhookSubscriber",
    "WebhookError",
]


class WebhookError(LintasError):
    """Base of the webhook deliverer's errors."""


class DeliveryFailed(WebhookError):
    """One POST of ``event_id`` to ``subscriber`` did not deliver it.

    Attributes:
        subscriber: the subscriber's name.
        event_id: the event's CloudEvents id (the ``webhook-id``).
        status_code: the HTTP status of the answer, or None when none came back.
        reason: what went wrong, in words (logged and stored as the last error).
    """

    def __init__(
        self, subscriber: str, event_id: str, reason: str, *, status_code: int | None = None
    ) -> None:
        super().__init__(f"Delivery of {event_id} to {subscriber} failed: {reason}.")
        self.subscriber = subscriber
        self.event_id = event_id
        self.reason = reason
        self.status_code = status_code


class EndpointUnreachable(DeliveryFailed):
    """No connection could be made or kept (refused, reset, DNS failure)."""

    retriable = True


class EndpointTimeout(DeliveryFailed):
    """The endpoint did not answer within the request timeout."""

    retriable = True


class EndpointError(DeliveryFailed):
    """The endpoint answered with a server error (5xx)."""

    retriable = True


class EndpointThrottled(DeliveryFailed):
    """The endpoint answered 429 Too Many Requests.

    Attributes:
        retry_after: seconds its ``Retry-After`` header asked to wait, or None without one.
    """

    retriable = True

    def __init__(
        self,
        subscriber: str,
        event_id: str,
        reason: str,
        *,
        status_code: int | None = 429,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(subscriber, event_id, reason, status_code=status_code)
        self.retry_after = retry_after


class EndpointRejected(DeliveryFailed):
    """The endpoint refused the event (a 4xx other than 429, or a redirect): sending the same
    request again would get the same answer, so the event is dead-lettered at once."""

    retriable = False


class NoSigningSecret(WebhookError):
    """The subscriber has no valid signing secret (all expired, or none issued yet).

    Nothing is sent unsigned: its events wait (until their deadline) for a new secret.
    """

    retriable = True

    def __init__(self, subscriber: str) -> None:
        super().__init__(
            f"Subscriber {subscriber!r} has no valid webhook signing secret.",
            hint=f"Issue one with `lintas subscribers rotate-secret {subscriber}`.",
        )
        self.subscriber = subscriber


class NotAWebhookSubscriber(WebhookError):
    """A command named a subscriber that does not exist or does not receive webhooks."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"Subscriber {name!r} {reason}.", hint="See `lintas subscribers list`.")
        self.name = name
        self.reason = reason

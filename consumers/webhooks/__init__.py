"""The webhook deliverer: routed events POSTed to subscribing systems, signed and retried.

Each webhook subscriber's routed events (``lintas.deliver.<subscriber>``) are copied into a
PostgreSQL delivery queue in the same transaction as the consumed offsets, then POSTed as
CloudEvents JSON signed per Standard Webhooks, one event in flight per key, with backoff,
a circuit breaker per subscriber and a dead-letter topic (``lintas.deliver.<subscriber>.dlq``)
for what cannot be delivered. Run it with ``lintas deliver`` (``lintas up`` does); see
``docs/webhooks.md``::

    from lintas.consumers.webhooks import Deliverer, subscriber_health

    async with Deliverer(settings, kafka=conn, pg_dsn=dsn, registry_url=url) as deliverer:
        await deliverer.wait()
"""

from .breaker import CircuitBreaker, CircuitState
from .copier import DeliveryCopier, delivery_topic
from .deadletter import DeadLetterWriter
from .dispatcher import WebhookDispatcher, webhook_targets
from .exceptions import (
    DeliveryFailed,
    EndpointError,
    EndpointRejected,
    EndpointThrottled,
    EndpointTimeout,
    EndpointUnreachable,
    NoSigningSecret,
    NotAWebhookSubscriber,
    WebhookError,
)
from .health import HealthStatus, SubscriberHealth, subscriber_health
from .queue import AttemptOutcome, DeadReason, DeliveryQueue
from .redeliver import RedeliveryReport, read_dead_letters, redeliver
from .retry import RetryPolicy, parse_retry_after
from .sender import WebhookSender
from .service import Deliverer, run_deliverer
from .signing import WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP, WebhookSigner

__all__ = [
    # the service
    "Deliverer",
    "run_deliverer",
    # its parts
    "CircuitBreaker",
    "CircuitState",
    "DeadLetterWriter",
    "DeliveryCopier",
    "DeliveryQueue",
    "RetryPolicy",
    "WebhookDispatcher",
    "WebhookSender",
    "WebhookSigner",
    "delivery_topic",
    "parse_retry_after",
    "webhook_targets",
    "WEBHOOK_ID",
    "WEBHOOK_SIGNATURE",
    "WEBHOOK_TIMESTAMP",
    # outcomes
    "AttemptOutcome",
    "DeadReason",
    # health (the portal)
    "HealthStatus",
    "SubscriberHealth",
    "subscriber_health",
    # redelivery
    "RedeliveryReport",
    "read_dead_letters",
    "redeliver",
    # errors
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

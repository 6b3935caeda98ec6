"""The HTTP ingest gateway: OPD applications in any language publish events over HTTP.

``lintas gateway`` serves it (``lintas up`` starts one); each application authenticates
with its own API key from the directory and publishes its OPD's events, validated against
the contract catalog and handed to Kafka through the producer SDK (spooled on disk while
Kafka is away). See ``docs/gateway.md`` for the API, the examples in curl, PHP, Java and
.NET, and the error answers.

Usage (embedding, as the tests and the benchmark do)::

    from lintas.producers.gateway import Gateway, GatewayServer

    gateway = Gateway(settings, kafka=conn, pg_dsn=dsn, registry=registry_url)
    async with GatewayServer(gateway, port=0) as server:
        ...   # POST f"{server.url}/v1/events/dukcapil.kematian_dicatat.v1"
"""

from .app import create_app
from .exceptions import (
    BatchTooLarge,
    EventsInvalid,
    EventTypeNotPermitted,
    GatewayError,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    IdempotencyUnavailable,
    InvalidEvent,
    MalformedRequest,
    PayloadTooLarge,
    PublishTimedOut,
    RateLimited,
    RequestTimedOut,
    Unauthenticated,
    UnknownEventTypeName,
    UnsupportedContentType,
)
from .openapi import build_openapi
from .runtime import Gateway
from .service import GatewayServer, gateway_from_settings, serve

# Grouped by concern, as in aiokafka/__init__.py.
__all__ = [
    # the service
    "Gateway",
    "GatewayServer",
    "create_app",
    "gateway_from_settings",
    "serve",
    # the API document
    "build_openapi",
    # errors
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

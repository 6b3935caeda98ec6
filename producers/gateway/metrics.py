"""Prometheus metrics of the gateway, served at ``/metrics`` with the producer SDK's.

Series::

    lintas_gateway_requests_total{route,code}        answered requests
    lintas_gateway_request_seconds{route}            time to answer
    lintas_gateway_events_total{app,outcome}         events by outcome: sent, spooled,
                                                     invalid, refused (not permitted)
    lintas_gateway_replays_total{app}                answers repeated for an idempotency key
    lintas_gateway_rate_limited_total{app}           requests refused with 429
    lintas_gateway_directory_ready                   1 when the directory view is caught up

The producer's series (``lintas_producer_*{producer="gateway"}``: sent, spooled, forwarded,
failed, in flight, spool size, send latency) are in the same registry.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["GatewayMetrics"]

# From an in-memory answer (a replay, a 4xx) to a batch of 1,000 events sent with acks=all
# on a slow broker, and to the request timeout.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class GatewayMetrics:
    """The gateway's metric families, registered in ``registry``.

    Args:
        registry: a registry of the gateway's own (one per app instance, so tests can run
            several gateways in one process).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "lintas_gateway_requests",
            "Requests answered, by route and status code.",
            ["route", "code"],
            registry=registry,
        )
        self.latency = Histogram(
            "lintas_gateway_request_seconds",
            "Time from receiving a request to answering it.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.events = Counter(
            "lintas_gateway_events",
            "Events by application and outcome (sent, spooled, invalid, refused).",
            ["app", "outcome"],
            registry=registry,
        )
        self.replays = Counter(
            "lintas_gateway_replays",
            "Answers repeated for a retried idempotency key (nothing published).",
            ["app"],
            registry=registry,
        )
        self.rate_limited = Counter(
            "lintas_gateway_rate_limited",
            "Requests refused because the application was over its rate limit.",
            ["app"],
            registry=registry,
        )
        self.directory_ready = Gauge(
            "lintas_gateway_directory_ready",
            "1 when the directory view has caught up with lintas.directory.",
            registry=registry,
        )

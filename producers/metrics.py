"""Prometheus metrics of the producer SDK, for services that embed it to expose.

Series (label ``producer`` is the producer's name, ``<opd>.<app>`` by default)::

    lintas_producer_sent_total{producer,topic}     acknowledged by the broker when sent
    lintas_producer_spooled_total{producer}        written to the spool
    lintas_producer_forwarded_total{producer}      forwarded from the spool, acknowledged
    lintas_producer_failed_total{producer,reason}  raised to the caller or rejected by the
                                                   broker for good (validation, not_authorized,
                                                   refused, spool_full, ...)
    lintas_producer_in_flight{producer}            handed to Kafka, not yet acknowledged
    lintas_producer_spool_records{producer}        waiting in the spool
    lintas_producer_spool_bytes{producer}
    lintas_producer_send_seconds{producer}         latency of send / send_many calls

Usage::

    from prometheus_client import CollectorRegistry, generate_latest
    registry = CollectorRegistry()
    producer = EventProducer(app="siak", opd="dukcapil", metrics_registry=registry)
    ... generate_latest(registry)

Without a registry the process-wide default one is used (what ``prometheus_client``'s
``start_http_server`` and the Lintas services serve).
"""

from __future__ import annotations

import threading
import weakref

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ProducerMetrics", "metrics_for"]

# From a local broker's ~2 ms to a spool write on a slow disk or a send that times out.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class _Families:
    """The metric families, registered once per registry (Prometheus refuses duplicates)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter(
            "lintas_producer_sent",
            "Events the broker acknowledged on first send.",
            ["producer", "topic"],
            registry=registry,
        )
        self.spooled = Counter(
            "lintas_producer_spooled",
            "Events written to the spool because the broker was unreachable or slow.",
            ["producer"],
            registry=registry,
        )
        self.forwarded = Counter(
            "lintas_producer_forwarded",
            "Spooled events forwarded to the broker and acknowledged.",
            ["producer"],
            registry=registry,
        )
        self.failed = Counter(
            "lintas_producer_failed",
            "Events that were refused: raised to the caller, or rejected by the broker.",
            ["producer", "reason"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "lintas_producer_in_flight",
            "Events handed to Kafka and not yet acknowledged.",
            ["producer"],
            registry=registry,
        )
        self.spool_records = Gauge(
            "lintas_producer_spool_records",
            "Events waiting in the spool.",
            ["producer"],
            registry=registry,
        )
        self.spool_bytes = Gauge(
            "lintas_producer_spool_bytes",
            "Bytes the waiting events take in the spool.",
            ["producer"],
            registry=registry,
        )
        self.latency = Histogram(
            "lintas_producer_send_seconds",
            "Time a send or send_many call took, until acknowledged or spooled.",
            ["producer"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )


_families: weakref.WeakKeyDictionary[CollectorRegistry, _Families] = weakref.WeakKeyDictionary()
_families_lock = threading.Lock()


class ProducerMetrics:
    """The metrics of one producer (its label values bound once, off the hot path)."""

    def __init__(self, name: str, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else REGISTRY
        with _families_lock:
            families = _families.get(registry)
            if families is None:
                families = _families[registry] = _Families(registry)
        self._families = families
        self.name = name
        self._sent: dict[str, Counter] = {}
        self._failed: dict[str, Counter] = {}
        self.spooled = families.spooled.labels(name)
        self.forwarded = families.forwarded.labels(name)
        self.in_flight = families.in_flight.labels(name)
        self.spool_records = families.spool_records.labels(name)
        self.spool_bytes = families.spool_bytes.labels(name)
        self.latency = families.latency.labels(name)

    def sent(self, topic: str, count: int) -> None:
        child = self._sent.get(topic)
        if child is None:
            child = self._sent[topic] = self._families.sent.labels(self.name, topic)
        child.inc(count)

    def failed(self, reason: str, count: int = 1) -> None:
        child = self._failed.get(reason)
        if child is None:
            child = self._failed[reason] = self._families.failed.labels(self.name, reason)
        child.inc(count)

    def spool_size(self, records: int, size: int) -> None:
        self.spool_records.set(records)
        self.spool_bytes.set(size)


def metrics_for(name: str, registry: CollectorRegistry | None = None) -> ProducerMetrics:
    """The metrics of producer ``name`` in ``registry`` (the default registry if ``None``)."""
    return ProducerMetrics(name, registry)

"""The dashboard's data layer: every panel from its one source, gathered into a snapshot.

Sources, kept apart so each can change without touching the others:

============  ===================================  ======================================
panel         source                               module
============  ===================================  ======================================
integration   the directory (activity)             :mod:`.integration`
traffic       ``lintas.metrics`` (stream workers)  :mod:`.traffic` (+ :mod:`.follow`)
dead_letters  ``lintas.dlq`` headers               :mod:`.deadletters` (+ :mod:`.follow`)
lag           Kafka group and end offsets          :mod:`.pipeline`
delivery      directory + Kafka offsets            :mod:`.pipeline`
freshness     Kafka offsets of the store sink      :mod:`.pipeline`
health        probes of Kafka, PostgreSQL, registry :mod:`.health`
============  ===================================  ======================================

A source that fails makes its own panel an ``error``; the others are unaffected.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from lintas.directory import Directory
from lintas.kafka import KafkaConnection
from lintas.topics import DLQ_TOPIC, METRICS_TOPIC

from . import health, integration, pipeline
from .deadletters import DeadLetterWindow
from .follow import TopicFollower
from .kafka import KafkaInspector
from .sections import Panel, PanelState, to_jsonable
from .traffic import DAYS, TrafficWindow

__all__ = ["Dashboard"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# Many open dashboards refresh every few seconds; one snapshot serves them all this long.
_CACHE_S = 2.0


async def _guard(source: str, work: Awaitable[Panel[T]]) -> Panel[T]:
    try:
        return await work
    except Exception as exc:  # one failing source must not blank the whole dashboard
        log.warning("dashboard source %s failed: %s", source, exc)
        return Panel.failed(source, f"{type(exc).__name__}: {exc}"[:300])


class Dashboard:
    """Gathers the panels; owns the Kafka clients and the topic windows.

    Args:
        directory: the open directory.
        pool: the portal's database pool (for the database probe).
        kafka: Kafka's address, or None when the portal runs without Kafka.
        registry_url: the schema registry, if any.
        zone: display time zone (days are days there).
        window_days: the directory's integrated window, shown beside the indicator.
        metrics_topic: where the stream workers write their one-minute counts.
        dlq_topic: the dead-letter topic.
    """

    def __init__(
        self,
        *,
        directory: Directory,
        pool: Any,
        kafka: KafkaConnection | None,
        registry_url: str | None,
        zone: ZoneInfo,
        window_days: int,
        metrics_topic: str = METRICS_TOPIC,
        dlq_topic: str = DLQ_TOPIC,
    ) -> None:
        self._directory = directory
        self._pool = pool
        self._conn = kafka
        self._registry_url = registry_url
        self._window_days = window_days
        self._topics = (metrics_topic, dlq_topic)
        self.traffic = TrafficWindow(zone)
        self.dead_letters = DeadLetterWindow()
        self._inspector: KafkaInspector | None = None
        self._followers: list[TopicFollower] = []
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()
        self._kafka_error: str | None = None

    async def start(self) -> None:
        """Start following the metrics and dead-letter topics (a missing broker is retried)."""
        if self._conn is None:
            return
        self._followers = [
            TopicFollower(
                self._conn,
                self._topics[0],
                horizon=dt.timedelta(days=DAYS),
                handle=self.traffic.handle,
            ),
            TopicFollower(
                self._conn,
                self._topics[1],
                horizon=dt.timedelta(hours=24),
                handle=self.dead_letters.handle,
            ),
        ]
        for follower in self._followers:
            follower.start()

    async def stop(self) -> None:
        for follower in self._followers:
            await follower.stop()
        if self._inspector is not None:
            await self._inspector.stop()
            self._inspector = None

    async def _kafka(self) -> KafkaInspector:
        if self._conn is None:
            raise RuntimeError("no Kafka connection configured")
        if self._inspector is None:
            inspector = KafkaInspector(self._conn)
            await inspector.start()
            self._inspector = inspector
        return self._inspector

    async def snapshot(self) -> dict[str, Any]:
        """Every panel as JSON-ready data, at most ``_CACHE_S`` old."""
        async with self._lock:
            now = time.monotonic()
            if self._cached is not None and now - self._cached[0] < _CACHE_S:
                return self._cached[1]
            doc = await self._collect()
            self._cached = (time.monotonic(), doc)
            return doc

    async def _collect(self) -> dict[str, Any]:
        kafka = await self._kafka_or_none()
        subscribers = await self._directory.list_subscribers()

        async def from_kafka(work: Any) -> Any:
            if kafka is None:
                raise RuntimeError(self._kafka_error or "Kafka is not reachable")
            return await work(kafka)

        integ, lag, delivery, fresh, probes = await asyncio.gather(
            _guard(
                integration.SOURCE,
                integration.integration_panel(self._directory, window_days=self._window_days),
            ),
            _guard(pipeline.SOURCE, from_kafka(pipeline.lag_panel)),
            _guard(pipeline.SOURCE, from_kafka(lambda k: pipeline.delivery_panel(k, subscribers))),
            _guard(pipeline.SOURCE, from_kafka(pipeline.freshness_panel)),
            _guard(
                health.SOURCE,
                health.health_panel(kafka=kafka, pool=self._pool, registry_url=self._registry_url),
            ),
        )
        if kafka is not None and any(p.state is PanelState.ERROR for p in (lag, delivery, fresh)):
            # A broken connection is rebuilt on the next refresh rather than reused.
            self._inspector = None
            await kafka.stop()
        panels = {
            "integration": integ,
            "traffic": self.traffic.panel(),
            "dead_letters": self.dead_letters.panel(),
            "lag": lag,
            "delivery": delivery,
            "freshness": fresh,
            "health": probes,
        }
        return {
            "generated_at": dt.datetime.now(dt.UTC).isoformat(),
            "panels": {name: to_jsonable(panel) for name, panel in panels.items()},
        }

    async def _kafka_or_none(self) -> KafkaInspector | None:
        try:
            inspector = await self._kafka()
        except Exception as exc:  # the Kafka panels and the broker probe report it
            self._kafka_error = f"{type(exc).__name__}: {exc}"[:300]
            return None
        self._kafka_error = None
        return inspector

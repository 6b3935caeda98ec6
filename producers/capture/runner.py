"""Running capture sources: state, producer and mechanism together, with retries.

Usage::

    configs = [load_source(Path("simda.yaml")), load_source(Path("simpeg.yaml"))]
    await run_sources(configs, settings)          # until SIGTERM / Ctrl-C

Each source gets its own state file, its own producer spool (``capture.<source>``) and its
own mechanism. A retriable error (the database or Kafka away, a dropped connection) is
logged and the mechanism restarted from the committed position after a backoff; an error
that needs a person (a setting to change, a position lost, a refused credential) stops
every source of the process with the message and its hint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from lintas.exceptions import LintasError
from lintas.kafka import KafkaConnection
from lintas.producers import EventProducer
from lintas.schemas import EventType, SchemaResolver
from lintas.settings import Settings

from .base import CaptureSource, SourceStats
from .binlog import BinlogSource
from .config import SourceConfig
from .deadletter import DeadLetterWriter
from .outbox import OutboxRelay
from .pglogical import LogicalSource
from .polling import PollingSource
from .publisher import Publisher
from .state import CaptureState
from .types import Mechanism

__all__ = ["CaptureRunner", "run_sources", "state_dir"]

log = logging.getLogger("lintas.capture")

MECHANISMS: dict[Mechanism, type[CaptureSource]] = {
    Mechanism.POLLING: PollingSource,
    Mechanism.BINLOG: BinlogSource,
    Mechanism.LOGICAL: LogicalSource,
    Mechanism.OUTBOX: OutboxRelay,
}

# A mechanism that ran this long without failing counts as healthy: the next failure
# starts the backoff from the beginning again.
_HEALTHY_AFTER_S = 60.0


def state_dir(settings: Settings) -> Path:
    """Where sources keep positions: ``LINTAS_CAPTURE__STATE_DIR``, else ``<data_dir>/capture``."""
    return (settings.capture.state_dir or settings.data_dir / "capture").expanduser()


class CaptureRunner:
    """Runs one source until stopped.

    Args:
        config: the checked source file.
        settings: the Lintas settings.
        connection: Kafka; from the settings when not given.
        registry: the schema registry's URL or a resolver; from the settings when not given.
        topic_of: where events of a type go (``LINTAS_CAPTURE__TOPIC_PREFIX`` + the catalog
            topic by default).
        metrics_registry: where the producer's metrics go.
    """

    def __init__(
        self,
        config: SourceConfig,
        settings: Settings,
        *,
        connection: KafkaConnection | None = None,
        registry: str | SchemaResolver | None = None,
        topic_of: Callable[[EventType], str] | None = None,
        metrics_registry: CollectorRegistry | None = None,
    ) -> None:
        self.config = config
        self.settings = settings
        if connection is None:
            from lintas.endpoints import kafka_connection

            connection = kafka_connection(settings)
        self.connection = connection
        self.registry = registry
        prefix = settings.capture.topic_prefix
        if topic_of is None and prefix:
            topic_of = lambda event_type: prefix + event_type.topic  # noqa: E731
        self.topic_of = topic_of
        self.metrics_registry = metrics_registry
        self.stats = SourceStats()
        self.source: CaptureSource | None = None
        self.ready = asyncio.Event()
        """Set once a mechanism passed its start-up checks (tests and the benchmark wait)."""

    async def run(self, stop: asyncio.Event) -> None:
        """Capture until ``stop`` is set.

        Raises:
            LintasError: a problem that retrying cannot solve (see the module docstring).
        """
        config = self.config
        state = CaptureState.open(state_dir(self.settings), config.name)
        capture = self.settings.capture
        dead_letters = DeadLetterWriter(
            self.connection,
            capture.topic_prefix + capture.dlq_topic,
            timeout_s=self.settings.producer.send_timeout_s * 3,
        )
        producer = EventProducer(
            app=config.spec.app,
            opd=config.spec.opd,
            name=f"capture.{config.name}",
            settings=self.settings,
            connection=self.connection,
            registry=self.registry,
            topic_of=self.topic_of,
            metrics_registry=self.metrics_registry,
        )
        try:
            async with producer:
                publisher = Publisher(
                    source=config.name,
                    opd=config.spec.opd,
                    producer=producer,
                    dead_letters=dead_letters,
                    mappings={name: t.mapping for name, t in config.tables.items()},
                )
                await self._loop(stop, state, publisher)
        finally:
            await dead_letters.stop()
            state.close()

    async def _loop(self, stop: asyncio.Event, state: CaptureState, publisher: Publisher) -> None:
        backoff = 1.0
        cls = MECHANISMS[self.config.mechanism]
        while not stop.is_set():
            source = cls(
                self.config,
                state=state,
                publisher=publisher,
                settings=self.settings.capture,
                stats=self.stats,
            )
            self.source = source
            started = time.monotonic()
            try:
                await source.prepare()
                self.ready.set()
                log.info("%s: capturing with %s", self.config.name, self.config.mechanism)
                await source.run(stop)
                return
            except LintasError as exc:
                if not exc.retriable:
                    raise
                log.warning("%s: %s; retrying in %.0f s", self.config.name, exc.message, backoff)
            except Exception as exc:  # an unforeseen driver error: retry, but show it all
                log.exception(
                    "%s: unexpected %s; retrying in %.0f s",
                    self.config.name,
                    type(exc).__name__,
                    backoff,
                )
            finally:
                await source.close()
            if time.monotonic() - started > _HEALTHY_AFTER_S:
                backoff = 1.0
            if await CaptureSource.pause(stop, backoff):
                return
            backoff = min(backoff * 2, self.settings.capture.retry_max_s)


async def run_sources(
    configs: Sequence[SourceConfig],
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    **kwargs: Any,
) -> None:
    """Run every source in this process until ``stop`` (SIGTERM/SIGINT when not given).

    Raises:
        LintasError: the first error that needs a person; the other sources are stopped.
    """
    own_stop = stop is None
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    if own_stop:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    runners = [CaptureRunner(config, settings, **kwargs) for config in configs]
    tasks = [asyncio.create_task(r.run(stop), name=f"capture-{r.config.name}") for r in runners]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if task.exception() is not None:
                stop.set()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise task.exception()  # type: ignore[misc]
    finally:
        stop.set()
        for task in tasks:
            if not task.done():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if own_stop:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

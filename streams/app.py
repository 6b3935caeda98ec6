"""The faust-streaming app of a stream worker: one agent over every OPD topic.

``lintas worker`` runs :func:`run_worker`; N workers with the same ``app_id`` share the OPD
topics' partitions through the consumer group. What happens to each record is in
:mod:`lintas.streams.pipeline`; this module wires it into faust:

- the agent reads all OPD topics; :mod:`lintas.streams.commits` admits their records in
  offset order and commits source offsets itself (faust's acks are not used: see
  :mod:`lintas.streams.positions`), once the pipeline says a record's outputs are
  acknowledged by the broker and its id is in the dedup changelog;
- the dedup table (:mod:`lintas.streams.dedup`) is a changelog-backed faust table;
- timers look for new OPD topics (and re-subscribe), flush dedup changelog batches, close
  metrics windows and expire old dedup keys; shutdown writes what is pending.

Processing guarantee: at least once. Faust's ``exactly_once`` has open bugs
(duplicates, wrong commits around offset gaps) and would only cover Kafka anyway; the
platform's promise is that every valid event reaches its canonical topic at least once and
the store keeps it exactly once by event id, with dedup here removing nearly all repeats.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import sys
from collections.abc import Sequence
from typing import Any, NoReturn, cast

import faust

from lintas.directory.view import DirectoryView
from lintas.kafka import KafkaConnection, create_producer
from lintas.schemas.registry import SchemaRegistryClient
from lintas.settings import Settings

from .commits import SourceCommitter
from .dedup import ChangelogWriter, DedupIndex
from .eventtypes import EventTypeResolver
from .exceptions import RecordRejected
from .metrics import WindowCounter, encode_metric
from .pipeline import Pipeline
from .processor import Accepted, Processor, SourceRecord
from .processor import Outcome as RecordOutcome
from .routing import Router
from .watch import DEDUP_TABLE, TopicWatcher, changelog_topic

__all__ = ["StreamsApp", "prepare", "run_worker"]

log = logging.getLogger(__name__)

# Faust waits 45 s after a subscription change before it re-subscribes, to coalesce changes
# while agents start; new OPD topics are rare, and their events should flow within seconds.
_RESUBSCRIBE_DELAY_S = 1.0
_EXPIRE_EVERY_S = 3600.0
_GIL_SWITCH_S = 0.0005
# Dedup entries wait at most this long for their changelog batch.
_CHANGELOG_FLUSH_S = 0.05
_WAIT_FOR_TOPICS_S = 5.0
_STALL_CHECK_S = 1.0
_JSON = [("content-type", b"application/json")]


class StreamsApp:
    """A worker's faust app and the parts its agent and timers use.

    Args:
        settings: the worker's settings (``settings.streams``).
        conn: how to reach Kafka.
        registry_url: the schema registry.
        sources: the OPD topics to read from the start (more are added as they appear).
    """

    def __init__(
        self, settings: Settings, conn: KafkaConnection, registry_url: str, sources: Sequence[str]
    ) -> None:
        conf = settings.streams
        self.settings = settings
        self.registry = SchemaRegistryClient(registry_url)
        self.watcher = TopicWatcher(conn, settings)
        self.names = self.watcher.names
        self.router = Router(
            self.registry, self.names, DirectoryView(conn, topic=self.names.directory)
        )
        self.processor = Processor(
            self.registry,
            self.names,
            max_record_bytes=conf.max_record_bytes,
            future_skew=dt.timedelta(seconds=conf.future_skew_s),
            retry_unknown_s=conf.topic_refresh_s,
            router=self.router,
        )
        self.counter = WindowCounter(conf.metrics_window_s, f"{socket.gethostname()}:{os.getpid()}")
        self.sources: list[str] = sorted(sources)
        self.app = self._create_app(conn)
        self._source = self.app.topic(*self.sources, key_type=bytes, value_type=bytes)
        self.table = self.app.Table(
            DEDUP_TABLE, key_type=str, value_type=int, partitions=settings.kafka.partitions
        )
        self.changelog = ChangelogWriter(self._producer, changelog_topic(conf.app_id))
        self.dedup = DedupIndex(
            self.table.data, self.changelog, dt.timedelta(days=conf.dedup_horizon_days)
        )
        self.pipeline = Pipeline(
            self.processor,
            self.dedup,
            self.counter,
            self._send,
            max_in_flight=conf.max_in_flight,
            prepare_output=self._prepare_output,
        )
        self.commits = SourceCommitter(
            conf.app_id, lambda: self.app.consumer, self.watcher.admin, self.pipeline.drain
        )
        self._provisioned: set[str] = set()
        self._conn = conn.with_client_id(f"{conf.app_id}-out")
        self._out: Any = None
        self._out_lock = asyncio.Lock()
        self._wire()

    def _create_app(self, conn: KafkaConnection) -> faust.App:
        conf = self.settings.streams
        datadir = self.settings.data_dir / "streams" / conf.app_id
        datadir.mkdir(parents=True, exist_ok=True)  # faust creates only the last level
        app = faust.App(
            conf.app_id,
            **conn.with_client_id(conf.app_id).faust_kwargs(),
            broker_client_id=conf.app_id,
            processing_guarantee="at_least_once",
            # Nothing is acked to faust (commits.py), so it must not wait for acks.
            stream_wait_empty=False,
            store="memory://",
            autodiscover=False,
            web_enabled=False,
            worker_redirect_stdouts=False,
            key_serializer="raw",
            value_serializer="raw",
            consumer_auto_offset_reset="earliest",
            broker_commit_interval=conf.commit_interval_s,
            broker_session_timeout=conf.session_timeout_s,
            broker_heartbeat_interval=min(3.0, conf.session_timeout_s / 5),
            stream_buffer_maxsize=conf.stream_buffer_maxsize,
            topic_partitions=self.settings.kafka.partitions,
            topic_replication_factor=self.settings.kafka.replication_factor,
            # No leader election topic: nothing here needs a leader.
            topic_disable_leader=True,
            # Standby copies of the dedup table would double its memory; a rebalanced
            # partition's ids are recovered from the changelog instead.
            table_standby_replicas=0,
            producer_acks=-1,
            datadir=str(datadir),
        )
        cast(Any, app.topics)._resubscribe_sleep_lock_seconds = _RESUBSCRIBE_DELAY_S
        return app

    async def _producer(self) -> Any:
        # Outputs go through a producer of our own rather than faust's: records are acked on
        # delivery (see pipeline.py), so faust's commit need not flush them, and a commit
        # never waits for thousands of sends in flight. Idempotent, acks=all.
        if self._out is None:
            async with self._out_lock:
                if self._out is None:
                    # 5 ms of linger fills batches under load (+30% events/s against 1 ms
                    # in `lintas bench streams`) and costs a few ms of p50 when idle.
                    producer = create_producer(self._conn, linger_ms=5)
                    await producer.start()
                    self._out = producer
        return self._out

    async def _send(
        self, topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> Any:
        producer = self._out or await self._producer()
        return await producer.send(topic, value=value, key=key, headers=headers)

    async def _prepare_output(self, outcome: RecordOutcome) -> None:
        # Output topics that appeared since start-up (the canonical topic of an event type
        # registered while the workers run, a new subscriber's delivery topic) are created
        # when the first record for them is accepted.
        if not isinstance(outcome, Accepted):
            return
        if outcome.topic in self._provisioned and all(
            d.topic in self._provisioned for d in outcome.deliveries
        ):
            return
        missing = {outcome.topic, *(d.topic for d in outcome.deliveries)} - self._provisioned
        event_types = [
            et
            for source in self.sources
            if (et := self.processor.event_types.known(source)) is not None
            and self.names.canonical(et.id) in missing
        ]
        subscribers = [d.subscriber for d in outcome.deliveries if d.topic in missing]
        await self.watcher.provision(event_types, subscribers=subscribers)
        self._provisioned |= missing

    def _wire(self) -> None:
        conf = self.settings.streams

        @self.app.agent(self._source, name=f"{conf.app_id}-process")
        async def process(stream: Any) -> None:
            # No faust acks: the worker commits the source offsets itself (commits.py).
            async for event in stream.noack().events():
                record = _source_record(event)
                done = await self.commits.admit(record)
                if done is not None:
                    await self.pipeline.submit(record, done)

        self.app.timer(conf.topic_refresh_s)(self._refresh_tick)
        self.app.timer(1.0)(self._metrics_tick)
        self.app.timer(_CHANGELOG_FLUSH_S)(self.changelog.flush)
        self.app.timer(_EXPIRE_EVERY_S)(self._expire_tick)
        self.app.timer(conf.commit_interval_s)(self.commits.commit)
        self.app.timer(_STALL_CHECK_S)(self.commits.check_stalled)
        self.app.on_before_shutdown.connect(self._on_shutdown)
        self.app.on_partitions_revoked.connect(self._on_revoked)

    async def _refresh_tick(self) -> None:
        await self.refresh_topics()

    async def _metrics_tick(self) -> None:
        await self.flush_metrics(dt.datetime.now(dt.UTC))

    async def _expire_tick(self) -> None:
        forgotten = self.dedup.expire(int(dt.datetime.now(dt.UTC).timestamp() * 1000))
        if forgotten:
            log.info("dedup: forgot %d event ids older than the horizon", forgotten)

    async def _on_shutdown(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # Faust has stopped consuming: commit what finished, write what is counted and
        # queued, then close.
        try:
            await self.commits.finish(None)
            await self.flush_metrics(None)
            await self.changelog.wait_written()
        finally:
            await self.close()

    async def _on_revoked(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        [revoked] = args
        # Still in the old generation: what finishes in time is committed, the rest is read
        # again by the partitions' next owner (at least once).
        await self.commits.finish([(tp.topic, tp.partition) for tp in revoked])

    async def flush_metrics(self, now: dt.datetime | None) -> None:
        """Write the records of every metrics window closed by ``now`` (all: ``None``)."""
        records = self.counter.drain() if now is None else self.counter.closed(now)
        futures = []
        for record in records:
            key, value = encode_metric(record)
            futures.append(await self._send(self.names.metrics, key, value, list(_JSON)))
        for result in await asyncio.gather(*futures, return_exceptions=True):
            if isinstance(result, Exception):
                log.warning("metrics: a window record was not written: %r", result)

    async def refresh_topics(self) -> list[str]:
        """Subscribe to OPD topics that appeared since the last look; returns the new ones."""
        scan = await self.watcher.scan()
        for problem in scan.mismatched:
            log.error("%s %s", problem.message, problem.hint)
        new = [t for t in scan.ready if t not in self.sources]
        if not new:
            return []
        event_types = []
        for topic in new:
            try:
                event_types.append(await self.processor.event_types.for_topic(topic))
            except RecordRejected as exc:  # its records will be dead-lettered until it has one
                log.warning("new topic %s has no event type yet: %s", topic, exc.detail)
        await self.watcher.provision(event_types)
        self._subscribe(sorted({*self.sources, *new}))
        log.info("subscribed to new OPD topics: %s", ", ".join(new))
        return new

    def _subscribe(self, topics: list[str]) -> None:
        current = set(self.sources)
        # The agent iterates a clone of our topic that faust's conductor holds; giving both
        # the new names and flagging the conductor (discard + add) makes it re-subscribe.
        for channel in [c for c in self.app.topics if set(c.topics) == current]:
            channel.topics = tuple(topics)
            self.app.topics.discard(channel)
            self.app.topics.add(channel)
        self._source.topics = tuple(topics)
        self.sources = topics

    async def close(self) -> None:
        """Close the output producer, the directory view, the registry and admin clients
        (faust closes its own); the worker does it when faust shuts down."""
        if self._out is not None:
            producer, self._out = self._out, None
            await producer.stop()
        await self.router.stop()
        await self.watcher.close()
        await self.registry.aclose()


def _source_record(event: Any) -> SourceRecord:
    message = event.message
    timestamp = message.timestamp
    return SourceRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=None if timestamp is None else int(timestamp * 1000),
        key=message.key,
        value=message.value,
        headers=list(message.headers or ()),
    )


async def prepare(settings: Settings, conn: KafkaConnection, registry_url: str) -> list[str]:
    """Wait until OPD topics exist and create the missing output topics; the topics to read.

    Raises:
        RegistryUnavailable: the registry cannot be reached.
    """
    watcher = TopicWatcher(conn, settings)
    registry = SchemaRegistryClient(registry_url)
    try:
        while True:
            scan = await watcher.scan()
            for problem in scan.mismatched:
                log.error("%s %s", problem.message, problem.hint)
            if scan.ready:
                break
            log.warning(
                "no %sopd.* topic to read yet (run `lintas topics sync`); looking again in %.0f s",
                watcher.names.prefix,
                _WAIT_FOR_TOPICS_S,
            )
            await asyncio.sleep(_WAIT_FOR_TOPICS_S)
        resolver = EventTypeResolver(registry, watcher.names)
        event_types = []
        for topic in scan.ready:
            try:
                event_types.append(await resolver.for_topic(topic))
            except RecordRejected as exc:
                log.warning("topic %s has no event type yet: %s", topic, exc.detail)
        await watcher.provision(event_types)
        return scan.ready
    finally:
        await watcher.close()
        await registry.aclose()


def run_worker(settings: Settings, conn: KafkaConnection, registry_url: str) -> NoReturn:
    """Run one stream worker until SIGTERM or SIGINT (faust's worker handles both)."""
    # Faust runs its Kafka consumer in a thread of its own. With Python's default 5 ms GIL
    # switch interval the event loop, which does the actual work, waits up to that long each
    # time the consumer thread has the GIL; 0.5 ms gave about 30% more events/s here.
    sys.setswitchinterval(_GIL_SWITCH_S)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    sources = loop.run_until_complete(prepare(settings, conn, registry_url))
    streams = StreamsApp(settings, conn, registry_url, sources)
    worker = faust.Worker(
        streams.app,
        loop=loop,
        loglevel=settings.log_level,
        quiet=True,
        redirect_stdouts=False,
    )
    worker.execute_from_commandline()

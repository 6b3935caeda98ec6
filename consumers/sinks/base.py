"""The consume-batch-write loop every sink shares, with offsets kept by the sink itself.

::

    collect   getmany() into a batch until it holds ``batch_max`` records, or its first
              record is ``max_delay`` old, or nothing more arrives while no write is running
    write     the subclass writes the batch and its offsets in one transaction, while the
              next batch is collected (one write in flight at a time)

Under load, records keep arriving while a write runs, so batches grow towards
``batch_max`` and the cost of a transaction is shared by many rows; when traffic is light,
a batch is written as soon as the stream pauses, and never later than ``max_delay``.

Offsets belong to the sink, not to the consumer group: on every partition assignment (the
rebalance listener) the sink asks the subclass where each partition stands
(:meth:`BatchingSink.stored_offsets`) and seeks there; a partition the sink has never
stored starts at the beginning. This is the Kafka Connect exactly-once sink pattern: rows
and offsets commit together, so a crash at any point resumes exactly after the last
committed batch. Offsets are also committed to Kafka after each write, at most once per
``kafka_commit_interval_s``, but only so that lag can be watched (the portal reads them);
they never decide where reading resumes.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import warnings
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from lintas.exceptions import LintasError
from lintas.kafka import KafkaConnection, create_consumer

from .batch import SinkBatch
from .exceptions import SinkStateError

__all__ = ["BatchingConfig", "BatchingSink", "SinkState"]

log = logging.getLogger("lintas.consumers.sinks")

T = TypeVar("T")
R = TypeVar("R")

# How long one getmany waits while a batch is open: short, so that an idle store is fed as
# soon as the stream pauses, long enough not to spin.
_POLL_S = 0.01
# While nothing is buffered, wake up this often to notice stop().
_IDLE_POLL_S = 0.5


class SinkState(enum.Enum):
    """Where a sink is in its life."""

    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(frozen=True, kw_only=True, slots=True)
class BatchingConfig:
    """How a sink consumes and batches.

    Usage::

        BatchingConfig(group_id="lintas-store", pattern=r"^lintas\\.canonical\\..*")

    Attributes:
        group_id: consumer group; also the key of the sink's stored offsets.
        topics: topics to read; or ``pattern``, a regular expression of topic names.
        batch_max: most records per write.
        max_delay_s: longest a record waits for its batch to be written.
        instance_id: static membership id (``group.instance.id``), one per process.
        session_timeout_s: a member silent this long leaves the group.
        topic_refresh_s: how often topics matching ``pattern`` are looked for.
        retry_max_s: longest pause between two attempts at a retriable operation.
        kafka_commit_interval_s: least time between two (informational) Kafka commits.
        read_committed: skip records of aborted Kafka transactions.
    """

    group_id: str
    topics: tuple[str, ...] = ()
    pattern: str | None = None
    batch_max: int = 10_000
    max_delay_s: float = 0.2
    instance_id: str | None = None
    session_timeout_s: float = 10.0
    topic_refresh_s: float = 30.0
    retry_max_s: float = 10.0
    kafka_commit_interval_s: float = 1.0
    read_committed: bool = True


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    def __init__(self, sink: BatchingSink[Any]) -> None:
        self._sink = sink

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._sink._revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._sink._assigned(assigned)


class BatchingSink(ABC, Generic[T]):
    """A Kafka consumer that writes what it reads in batches, with offsets it stores itself.

    Subclasses convert records (:meth:`convert`), write a batch with its offsets in one
    transaction (:meth:`write`) and say where a partition stands (:meth:`stored_offsets`).
    Retriable errors (``retriable`` is true, e.g. the database is restarting) are retried
    with backoff; any other error from :meth:`write` stops the sink.

    Usage::

        async with MySink(conn, config) as sink:
            await sink.run()          # until sink.stop() from elsewhere
    """

    def __init__(self, kafka: KafkaConnection, config: BatchingConfig) -> None:
        if not config.topics and not config.pattern:
            raise ValueError("a sink needs topics or a pattern to read")
        self.kafka = kafka
        self.config = config
        self._state = SinkState.NEW
        self._consumer: Any = None
        self._stopping = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._collecting: SinkBatch[T] = SinkBatch()
        self._pending: SinkBatch[T] | None = None
        self._rebalances = 0
        self._collected = 0
        self._stopped_topics: dict[str, str] = {}
        self._unpositioned: set[TopicPartition] = set()
        self._uncommitted: dict[TopicPartition, int] = {}
        self._last_kafka_commit = 0.0
        self.written = 0
        """Records written since start, skipped ones included (for logs and benchmarks)."""
        self.batches = 0
        """Batches written since start: under load far fewer than records."""

    def __del__(self) -> None:
        if getattr(self, "_state", None) is SinkState.RUNNING:
            warnings.warn(
                f"sink {self.config.group_id!r} was not stopped; use `async with` or "
                "`await sink.stop()` after `run()`",
                ResourceWarning,
                stacklevel=2,
            )

    @property
    def name(self) -> str:
        """The sink's name: its consumer group."""
        return self.config.group_id

    @property
    def state(self) -> SinkState:
        return self._state

    @property
    def stopped_topics(self) -> dict[str, str]:
        """Topics this sink stopped reading (see :meth:`stop_topic`), with the reason."""
        return dict(self._stopped_topics)

    # -- what a sink implements ----------------------------------------------------------

    async def open(self) -> None:
        """Connect to the store (called by :meth:`start` before the consumer joins)."""

    async def close(self) -> None:
        """Release the store's resources (called by :meth:`stop` last)."""

    @abstractmethod
    async def convert(self, record: ConsumerRecord) -> T | None:
        """Turn a consumed record into what :meth:`write` needs; ``None`` skips it.

        Runs while the previous batch is written, so decoding overlaps the store's I/O. A
        skipped record still moves its partition's offset (a dead letter, say).
        """

    @abstractmethod
    async def stored_offsets(
        self, partitions: Collection[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """Where each partition stands in the store: the next offset to read.

        Partitions the store has no offset for are left out (they start at the beginning).
        """

    @abstractmethod
    async def write(self, batch: SinkBatch[T]) -> None:
        """Write the batch's values and its ``next_offsets`` in one transaction."""

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store and join the consumer group.

        Raises:
            SinkStateError: the sink was started before.
        """
        if self._state is not SinkState.NEW:
            raise SinkStateError(self.name, self._state.value, "start")
        await self.open()
        cfg = self.config
        options: dict[str, Any] = {
            "group_id": cfg.group_id,
            "session_timeout_ms": int(cfg.session_timeout_s * 1000),
            "heartbeat_interval_ms": max(int(cfg.session_timeout_s * 1000) // 3, 100),
            "metadata_max_age_ms": int(cfg.topic_refresh_s * 1000),
            "isolation_level": "read_committed" if cfg.read_committed else "read_uncommitted",
            "max_partition_fetch_bytes": 4 * 1024 * 1024,
        }
        if cfg.instance_id:
            options["group_instance_id"] = cfg.instance_id
        self._consumer = create_consumer(self.kafka.with_client_id(cfg.group_id), **options)
        if cfg.pattern:
            self._consumer.subscribe(pattern=cfg.pattern, listener=_Listener(self))
        else:
            self._consumer.subscribe(topics=list(cfg.topics), listener=_Listener(self))
        try:
            await self._consumer.start()
        except BaseException:
            await self.close()
            raise
        self._state = SinkState.RUNNING
        log.info("sink %s started (batches of up to %d)", self.name, cfg.batch_max)

    async def stop(self) -> None:
        """Ask :meth:`run` to write what it holds and return; then leave the group."""
        self._stopping.set()

    async def _shutdown(self) -> None:
        self._state = SinkState.STOPPING
        try:
            await self._commit_kafka({}, force=True)
            if self._consumer is not None:
                await self._consumer.stop()
        finally:
            await self.close()
            self._state = SinkState.STOPPED
            log.info("sink %s stopped after %d records", self.name, self.written)

    async def __aenter__(self) -> BatchingSink[T]:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
        if self._state is SinkState.RUNNING:
            await self._shutdown()

    # -- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        """Consume, batch and write until :meth:`stop`; then shut down.

        Raises:
            SinkStateError: the sink is not started.
            LintasError: a non-retriable error of :meth:`write` (the sink stops with it).
        """
        if self._state is not SinkState.RUNNING:
            raise SinkStateError(self.name, self._state.value, "run")
        pending: asyncio.Task[None] | None = None
        try:
            while not self._stopping.is_set():
                await self._position()
                batch = await self._collect(pending)
                if pending is not None:
                    await pending
                    pending = None
                if batch:
                    self._pending = batch
                    pending = asyncio.create_task(self._write(batch))
            if pending is not None:
                await pending
                pending = None
        finally:
            if pending is not None:
                pending.cancel()
            await self._shutdown()

    async def _collect(self, pending: asyncio.Task[None] | None) -> SinkBatch[T]:
        loop = asyncio.get_running_loop()
        self._collected += 1
        batch: SinkBatch[T] = SinkBatch(number=self._collected)
        self._collecting = batch
        cfg = self.config
        while len(batch) < cfg.batch_max and not self._stopping.is_set():
            if batch.started_at is None:
                timeout = _IDLE_POLL_S
            else:
                timeout = min(batch.started_at + cfg.max_delay_s - loop.time(), _POLL_S)
                if timeout <= 0:
                    break
            rebalances = self._rebalances
            got = await self._consumer.getmany(
                timeout_ms=max(int(timeout * 1000), 1), max_records=cfg.batch_max - len(batch)
            )
            now = loop.time()
            for tp, records in got.items():
                for record in records:
                    value = await self.convert(record)
                    if rebalances != self._rebalances:
                        # Partitions were revoked (and re-seeked) meanwhile: what is left of
                        # this fetch is read again from the stored offsets.
                        break
                    if tp.topic in self._stopped_topics:
                        break
                    batch.add(tp, record.offset, value, now=now)
                if rebalances != self._rebalances:
                    break
            idle_store = pending is None or pending.done()
            if batch and not got and idle_store:
                break  # the stream paused and the store is free: write now, for freshness
        return batch

    async def _write(self, batch: SinkBatch[T]) -> None:
        async with self._write_lock:
            if not batch.next_offsets:
                return  # everything in it was revoked before it could be written
            started = asyncio.get_running_loop().time()
            await self._retry("write", lambda: self.write(batch))
            self.written += len(batch)
            self.batches += 1
            log.debug(
                "sink %s: wrote batch %d of %d records in %.3f s",
                self.name,
                batch.number,
                len(batch),
                asyncio.get_running_loop().time() - started,
            )
            self._pending = None
        await self._commit_kafka(batch.next_offsets)

    async def _retry(self, what: str, operation: Callable[[], Awaitable[R]]) -> R:
        delay = 0.1
        while True:
            try:
                return await operation()
            except LintasError as exc:
                if not exc.retriable or self._stopping.is_set():
                    raise
                log.warning(
                    "sink %s: %s failed, retrying in %.1f s: %s", self.name, what, delay, exc
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.retry_max_s)

    # -- partitions ----------------------------------------------------------------------

    async def _revoked(self, revoked: set[TopicPartition]) -> None:
        self._rebalances += 1
        # A write in flight finishes first, so the next owner seeks past what it wrote.
        async with self._write_lock:
            self._collecting.drop(revoked)
            if self._pending is not None:
                self._pending.drop(revoked)
        self._unpositioned -= revoked

    async def _assigned(self, assigned: set[TopicPartition]) -> None:
        self._rebalances += 1
        if not assigned:
            return
        try:
            offsets = await self._retry(
                "reading stored offsets", lambda: self.stored_offsets(assigned)
            )
        except Exception:
            # Never fall back to the group's committed offsets: hold the partitions until
            # the loop can position them from the store.
            log.exception("sink %s: cannot read stored offsets; pausing %s", self.name, assigned)
            self._consumer.pause(*assigned)
            self._unpositioned |= assigned
            return
        self._seek(assigned, offsets)

    def _seek(
        self, partitions: Collection[TopicPartition], offsets: dict[TopicPartition, int]
    ) -> None:
        for tp in partitions:
            # Offset 0 of a partition whose start was deleted by retention is out of range,
            # and auto_offset_reset=earliest then starts at the oldest record kept.
            self._consumer.seek(tp, offsets.get(tp, 0))
        stopped = [tp for tp in partitions if tp.topic in self._stopped_topics]
        if stopped:
            self._consumer.pause(*stopped)
        log.info(
            "sink %s: positioned %s",
            self.name,
            {f"{tp.topic}[{tp.partition}]": offsets.get(tp, 0) for tp in partitions},
        )

    async def _position(self) -> None:
        """Position partitions whose stored offsets could not be read at assignment."""
        if not self._unpositioned:
            return
        todo = self._unpositioned & self._consumer.assignment()
        offsets = await self._retry("reading stored offsets", lambda: self.stored_offsets(todo))
        self._seek(todo, offsets)
        resume = [tp for tp in todo if tp.topic not in self._stopped_topics]
        if resume:
            self._consumer.resume(*resume)
        self._unpositioned -= todo

    def stop_topic(self, topic: str, reason: str) -> None:
        """Stop reading ``topic`` (one event type) and leave the others running.

        Its partitions are paused and their records not yet written are dropped, so their
        stored offsets stay where the last written record left them; a restarted sink
        tries the topic again.
        """
        if topic in self._stopped_topics:
            return
        self._stopped_topics[topic] = reason
        mine = [tp for tp in self._consumer.assignment() if tp.topic == topic]
        if mine:
            self._consumer.pause(*mine)
        self._collecting.drop([tp for tp in self._collecting.next_offsets if tp.topic == topic])
        log.error("sink %s: stopped reading %s: %s", self.name, topic, reason)

    # -- informational commits -----------------------------------------------------------

    async def _commit_kafka(
        self, offsets: dict[TopicPartition, int], *, force: bool = False
    ) -> None:
        self._uncommitted.update(offsets)
        now = asyncio.get_running_loop().time()
        if not self._uncommitted or self._consumer is None:
            return
        if not force and now - self._last_kafka_commit < self.config.kafka_commit_interval_s:
            return
        assigned = self._consumer.assignment()
        todo = {
            tp: OffsetAndMetadata(off, "")
            for tp, off in self._uncommitted.items()
            if tp in assigned
        }
        self._uncommitted.clear()
        self._last_kafka_commit = now
        if not todo:
            return
        try:
            await self._consumer.commit(todo)
        except KafkaError as exc:  # a rebalance in progress, say: the next write commits
            log.debug("sink %s: informational Kafka commit failed: %s", self.name, exc)

"""The subscriber SDK: a Python system reads its own delivery topic, event by event.

Two ways to consume, with the same guarantees::

    async with Subscriber("dinsos-app", settings=settings) as subscriber:
        async for event in subscriber:        # the loop body is the handler
            await stop_bansos(event)

    async with Subscriber("dinsos-app", settings=settings, max_attempts=5) as subscriber:
        await subscriber.run(stop_bansos)     # retries in place, then dead-letters, goes on

**At least once.** An event's offset is committed only after its handler returned (the
loop body finished, or ``run``'s handler returned). Commits are batched: after the events
fetched together are all handled, and on ``stop()``. A crash therefore re-delivers the events
handled since the last commit, so handlers must be idempotent; :class:`SeenEvents` makes
that a two-line change.

**A failing handler.** ``run`` calls the handler again (with backoff) up to
``max_attempts`` times, then writes the event to ``lintas.deliver.<subscriber>.dlq`` with the
error and goes on with the next event. With ``async for``, an exception in the body leaves the
loop (that is Python's rule) with the event unacknowledged; the next ``async for`` on the same
Subscriber yields it again (``event.attempt`` counts up), and after ``max_attempts`` it is
dead-lettered and the loop goes on. Leaving the loop with ``break`` counts the same way: call
:meth:`ack` first to keep the event from coming back.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import logging
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, Self

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from lintas.kafka import KafkaConnection, create_consumer, create_producer
from lintas.schemas import Catalog, DeserializationError, load_catalog
from lintas.schemas.registry import SchemaRegistryClient
from lintas.settings import Settings, load_settings

from .._dlq import DeadLetterTopics, dead_letter_headers, dlq_topic
from .._records import RecordDecoder, read_envelope
from ._access import check_access, refusal
from ._event import DeliveredEvent, TypedResolver, parse_time
from .exceptions import NotAuthorized, SubscriberClosed

__all__ = ["Handler", "Subscriber"]

log = logging.getLogger(__name__)

Handler = Callable[[DeliveredEvent], Awaitable[object]]

_POLL_MS = 500
HANDLER_FAILED = "handler_failed"
UNDECODABLE = "undecodable"


class _State(enum.Enum):
    NEW = "not started"
    RUNNING = "running"
    STOPPED = "stopped"


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, subscriber: Subscriber) -> None:
        self._subscriber = subscriber

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._subscriber._revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        pass


class Subscriber:
    """Reads ``lintas.deliver.<name>`` and yields :class:`DeliveredEvent` objects.

    Args:
        name: the subscriber, as registered in the directory.
        settings: the root settings, to find Kafka and the schema registry (unless
            ``kafka`` and ``registry_url`` are given).
        kafka: the connection; the subscriber's principal needs Read on its topic and group,
            and Write (and Create, the first time) on its dead-letter topic.
        registry_url: the schema registry.
        group_id: the consumer group (default ``lintas-sub-<name>``); several processes
            with the same group share the partitions.
        max_attempts: tries of one event before it is dead-lettered.
        retry_backoff: seconds before ``run`` tries an event again; doubles each time.
        batch_max: records fetched at once (and committed together).
        catalog: the event types to build models for (default: the installed catalog).
    """

    def __init__(
        self,
        name: str,
        *,
        settings: Settings | None = None,
        kafka: KafkaConnection | None = None,
        registry_url: str | None = None,
        group_id: str | None = None,
        max_attempts: int = 3,
        retry_backoff: float = 1.0,
        batch_max: int = 100,
        catalog: Catalog | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        # As the producer SDK does: an application that passes nothing gets LINTAS_* settings.
        settings = settings if settings is not None else load_settings()
        if kafka is None or registry_url is None:
            from lintas.endpoints import kafka_connection
            from lintas.endpoints import registry_url as find_registry

            kafka = kafka or kafka_connection(settings)
            registry_url = registry_url or find_registry(settings)
            if registry_url is None:
                from lintas.exceptions import ConfigurationError

                raise ConfigurationError(
                    "LINTAS_REGISTRY_URL", "the subscriber SDK needs the schema registry"
                )
        self.name = name
        self.topic = f"lintas.deliver.{name}"
        self.dlq_topic = dlq_topic(name)
        self.group_id = group_id or f"lintas-sub-{name}"
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        self._kafka = kafka.with_client_id(f"lintas-sub-{name}")
        self._registry_url = registry_url
        self._settings = settings
        self._batch_max = batch_max
        self._resolver = TypedResolver(catalog or load_catalog())
        self._state = _State.NEW
        self._consumer: Any = None
        self._registry: SchemaRegistryClient | None = None
        self._decoder: RecordDecoder | None = None
        self._producer: Any = None
        self._dlq_topics: DeadLetterTopics | None = None
        self._buffer: collections.deque[Any] = collections.deque()
        self._current: Any = None
        """The record last yielded by ``async for`` and not yet acknowledged."""
        self._tries = 0
        self._done: dict[TopicPartition, int] = {}
        self.handled = 0
        """Events whose handler returned, since start."""
        self.dead_lettered = 0
        """Events written to the dead-letter topic, since start."""

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and join the group.

        Raises:
            DeliveryTopicMissing: the subscriber's topic does not exist.
            NotAuthorized: the broker refuses the principal on the topic or the group
                (aiokafka would wait for ever instead).
        """
        if self._state is not _State.NEW:
            raise SubscriberClosed(self.name, self._state.value)
        await check_access(self._kafka, name=self.name, topic=self.topic, group=self.group_id)
        consumer = create_consumer(
            self._kafka,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self._batch_max,
        )
        await consumer.start()
        try:
            consumer.subscribe([self.topic], listener=_Rebalance(self))
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._registry = SchemaRegistryClient(self._registry_url)
        self._decoder = RecordDecoder(self._registry)
        self._state = _State.RUNNING

    async def stop(self) -> None:
        """Commit what was handled, then disconnect. Unacknowledged events come again."""
        if self._state is not _State.RUNNING:
            self._state = _State.STOPPED
            return
        self._state = _State.STOPPED
        with contextlib.suppress(Exception):
            await self._commit()
        for closer in (
            self._consumer.stop if self._consumer else None,
            self._producer.stop if self._producer else None,
            self._registry.aclose if self._registry else None,
        ):
            if closer is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(closer(), 10)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if getattr(self, "_state", None) is _State.RUNNING:
            _warn(f"Unclosed Subscriber {self.name!r}", ResourceWarning, stacklevel=1)

    # -- consuming ----------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[DeliveredEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[DeliveredEvent]:
        while True:
            record, attempt = await self._next_for_loop()
            event = await self._event(record, attempt)
            if event is None:
                continue
            self._current = record
            yield event
            # Reached only when the loop body finished normally: the handler returned.
            self.ack()

    def ack(self, event: DeliveredEvent | None = None) -> None:
        """Acknowledge the event ``async for`` yielded last (its handler is done).

        The loop does this by itself when the body finishes; call it before ``break`` so
        the event does not come again.
        """
        record = self._current
        if record is None or (event is not None and event.offset != record.offset):
            return
        self._current = None
        self._tries = 0
        self.handled += 1
        self._mark_done(record)

    async def _next_for_loop(self) -> tuple[Any, int]:
        while self._current is not None:
            # The previous loop ended in its body: that try failed.
            record = self._current
            self._tries += 1
            if self._tries < self.max_attempts:
                return record, self._tries + 1
            self._current = None
            await self._dead_letter(
                record,
                reason=HANDLER_FAILED,
                message="the handler raised (or the loop was left) before it finished",
                attempts=self._tries,
            )
            self._tries = 0
            self._mark_done(record)
        return await self._fetch(), 1

    async def run(self, handler: Handler) -> None:
        """Call ``handler`` for every event until cancelled or :meth:`stop` is called.

        A handler that raises is called again after ``retry_backoff`` (doubling) seconds, up
        to ``max_attempts`` tries; then the event goes to the dead-letter topic with the
        error, and the next event is handled.

        Raises:
            NotAuthorized: the broker refuses the principal on its topic or group (its ACLs
                were removed while it ran), or on its dead-letter topic.
        """
        while self._state is _State.RUNNING:
            try:
                record = await self._fetch()
            except SubscriberClosed:
                return
            event = await self._event(record, 1)
            if event is None:
                continue
            for attempt in range(1, self.max_attempts + 1):
                try:
                    await handler(event)
                    self.handled += 1
                    break
                except Exception as exc:
                    if attempt == self.max_attempts:
                        await self._dead_letter(
                            record, reason=HANDLER_FAILED, message=repr(exc), attempts=attempt
                        )
                        break
                    log.warning(
                        "%s: handler failed on %s (try %d of %d): %r",
                        self.name,
                        event.id,
                        attempt,
                        self.max_attempts,
                        exc,
                    )
                    await asyncio.sleep(self.retry_backoff * 2 ** (attempt - 1))
                    event = _with_attempt(event, attempt + 1)
            self._mark_done(record)

    # -- internals ----------------------------------------------------------------------

    async def _fetch(self) -> Any:
        while not self._buffer:
            if self._state is not _State.RUNNING:
                raise SubscriberClosed(self.name, self._state.value)
            # Everything fetched before was handled: its offsets can be committed now.
            try:
                await self._commit()
            except Exception as exc:  # kept for the next commit (at least once either way)
                log.warning("%s: committing offsets failed, will retry: %r", self.name, exc)
            try:
                batches = await self._consumer.getmany(
                    timeout_ms=_POLL_MS, max_records=self._batch_max
                )
            except KafkaError as exc:
                if self._state is not _State.RUNNING:
                    # stop() closed the consumer under this fetch (ConsumerStoppedError).
                    raise SubscriberClosed(self.name, self._state.value) from exc
                # The ACLs went while running (the subscriber was disabled): say so.
                refused = self._refused(exc, self.topic)
                if refused is None:
                    raise
                raise refused from exc
            for records in batches.values():
                self._buffer.extend(records)
        return self._buffer.popleft()

    async def _event(self, record: Any, attempt: int) -> DeliveredEvent | None:
        """Decode a record; an undecodable one is dead-lettered (None is returned)."""
        assert self._decoder is not None
        envelope = read_envelope(list(record.headers or ()))
        if envelope.id is None:
            reason = "no ce_id header: the event has no id"
        else:
            try:
                values = await self._decoder.decode(
                    record.value,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                )
            except DeserializationError as exc:
                reason = str(exc)
            else:
                return DeliveredEvent(
                    id=envelope.id,
                    type=envelope.type,
                    source=envelope.source,
                    subject=envelope.subject,
                    time=parse_time(envelope.time),
                    data=self._resolver.data(envelope.type, values),
                    record=values,
                    key=record.key,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    attempt=attempt,
                )
        await self._dead_letter(record, reason=UNDECODABLE, message=reason, attempts=0)
        self._mark_done(record)
        return None

    def _mark_done(self, record: Any) -> None:
        tp = TopicPartition(record.topic, record.partition)
        self._done[tp] = max(self._done.get(tp, 0), record.offset + 1)

    async def _commit(self) -> None:
        if not self._done or self._consumer is None:
            return
        done, self._done = self._done, {}
        assigned = self._consumer.assignment()
        offsets = {tp: off for tp, off in done.items() if tp in assigned}
        if offsets:
            try:
                await self._consumer.commit(offsets)
            except Exception:
                # Kept for the next commit; if the partition moved meanwhile, the new owner
                # re-delivers these events (at least once).
                for tp, off in offsets.items():
                    self._done[tp] = max(self._done.get(tp, 0), off)
                raise

    async def _revoked(self, revoked: set[TopicPartition]) -> None:
        with contextlib.suppress(Exception):
            await self._commit()
        # Records of partitions that moved are the new owner's now.
        self._buffer = collections.deque(
            r for r in self._buffer if TopicPartition(r.topic, r.partition) not in revoked
        )
        current = self._current
        if current is not None and TopicPartition(current.topic, current.partition) in revoked:
            self._current, self._tries = None, 0

    def _refused(self, exc: BaseException, topic: str) -> NotAuthorized | None:
        return refusal(exc, self._kafka, name=self.name, topic=topic, group=self.group_id)

    async def _dead_letter(self, record: Any, *, reason: str, message: str, attempts: int) -> None:
        try:
            await self._send_dead_letter(record, reason=reason, message=message, attempts=attempts)
        except KafkaError as exc:
            refused = self._refused(exc, self.dlq_topic)
            if refused is None:
                raise
            raise refused from exc

    async def _send_dead_letter(
        self, record: Any, *, reason: str, message: str, attempts: int
    ) -> None:
        if self._producer is None:
            self._producer = create_producer(self._kafka)
            await self._producer.start()
            self._dlq_topics = DeadLetterTopics(self._kafka, self._settings.kafka)
        assert self._dlq_topics is not None
        await self._dlq_topics.ensure({self.dlq_topic})
        headers = dead_letter_headers(
            list(record.headers or ()),
            reason=reason,
            message=message,
            subscriber=self.name,
            attempts=attempts,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        await self._producer.send_and_wait(
            self.dlq_topic, value=record.value, key=record.key, headers=headers
        )
        self.dead_lettered += 1
        log.warning(
            "%s: %s@%d dead-lettered (%s): %s",
            self.name,
            record.topic,
            record.offset,
            reason,
            message,
        )


def _with_attempt(event: DeliveredEvent, attempt: int) -> DeliveredEvent:
    from dataclasses import replace

    return replace(event, attempt=attempt)

"""The directory as running services see it: a live, in-memory copy of ``lintas.directory``.

The gateway verifies API keys, the stream workers route events and the webhook deliverer
finds its subscribers without a query per request: each keeps a :class:`DirectoryView`,
which reads the compacted topic from the beginning (the latest snapshot of every entity),
then follows it, so a change made through :class:`~lintas.directory.Directory` reaches every
running service within seconds and without a restart::

    async with DirectoryView(kafka) as view:
        app = view.verify_api_key(token)                   # a dict lookup, no database
        for r in view.route("dukcapil.kematian_dicatat.v1", record):
            ...                                            # r.subscription, r.payload

Each reader has its own consumer without a group: every instance of every service needs the
whole directory, and there is nothing to commit because it always starts from the beginning.

Tree of the errors raised while reading the topic (they extend the directory's)::

    DirectoryError
    ├── DirectoryUnavailable  the view could not reach or catch up with the topic in time
    └── MalformedChange       a record on the topic is not a directory change (skipped)
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
import warnings
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self

from lintas.kafka import KafkaConnection, create_consumer
from lintas.topics import DIRECTORY_TOPIC

from ._snapshot import (
    ApiKeyEntry,
    DirectoryChange,
    DirectorySnapshot,
    Entity,
    EntityKind,
    MalformedChange,
    decode_change,
)
from .exceptions import DirectoryError
from .models import Application, Subscription
from .routing import Route

__all__ = [
    "ApiKeyEntry",
    "DirectoryChange",
    "DirectorySnapshot",
    "DirectoryUnavailable",
    "DirectoryView",
    "EntityKind",
    "MalformedChange",
    "decode_change",
]

log = logging.getLogger(__name__)

# How long one poll waits for records while following: short enough that stop() is quick,
# long enough that an idle view costs nothing.
_POLL_MS = 500
_MAX_BACKOFF = 10.0


class DirectoryUnavailable(DirectoryError):
    """The view could not read ``topic`` (missing, unreachable, or too slow to catch up)."""

    retriable = True

    def __init__(self, topic: str, reason: str, *, hint: str | None = None) -> None:
        super().__init__(f"The directory topic {topic!r} is unavailable: {reason}.", hint=hint)
        self.topic = topic
        self.reason = reason


ChangeListener = Callable[[str, Entity | None], object]


class ViewState(enum.Enum):
    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    CLOSED = "closed"


class DirectoryView:
    """A live copy of the directory, read from its compacted topic.

    Usage::

        view = DirectoryView(kafka)
        await view.start()          # returns once caught up with the topic
        try:
            view.verify_api_key(token)
        finally:
            await view.stop()

    Args:
        kafka: the connection (its principal needs Read on the topic, nothing else).
        topic: the directory topic.
        start_timeout: seconds :meth:`start` may take to connect and catch up.
        stop_timeout: seconds :meth:`stop` waits for the consumer to close.
    """

    def __init__(
        self,
        kafka: KafkaConnection,
        *,
        topic: str = DIRECTORY_TOPIC,
        start_timeout: float = 30.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self._kafka = kafka.with_client_id("lintas-directory-view")
        self.topic = topic
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._state = ViewState.NEW
        self._snapshot = DirectorySnapshot()
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[ChangeListener] = []
        self._changed = asyncio.Event()
        self.skipped = 0
        """How many malformed records were skipped since start."""

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Read the topic up to the end offsets seen now, then follow it in the background.

        Raises:
            DirectoryUnavailable: the topic is missing, Kafka is unreachable, or the view
                did not catch up within ``start_timeout``; nothing is left running.
            RuntimeError: the view was already started.
        """
        if self._state is not ViewState.NEW:
            raise RuntimeError(f"DirectoryView is {self._state.value}; start() runs only once")
        self._state = ViewState.STARTING
        self._snapshot, self.skipped = DirectorySnapshot(), 0  # a retried start begins afresh
        deadline = time.monotonic() + self._start_timeout
        # No group: every instance reads every partition from the start, nothing to commit.
        consumer = create_consumer(
            self._kafka,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        self._consumer = consumer
        try:
            async with asyncio.timeout(self._start_timeout):
                await consumer.start()
                await self._catch_up(consumer, deadline)
        except BaseException as exc:
            await self._close_consumer()
            self._state = ViewState.NEW
            if isinstance(exc, TimeoutError):
                raise DirectoryUnavailable(
                    self.topic,
                    f"did not connect and catch up within {self._start_timeout:g} s",
                    hint="Check that Kafka is up (`lintas status`) and the topic exists.",
                ) from exc
            if isinstance(exc, Exception) and not isinstance(exc, DirectoryUnavailable):
                raise DirectoryUnavailable(self.topic, f"Kafka failed: {exc!r}") from exc
            raise
        self._state = ViewState.RUNNING
        self._task = asyncio.create_task(self._follow(), name=f"directory-view:{self.topic}")

    async def _catch_up(self, consumer: Any, deadline: float) -> None:
        # Subscribed only once the topic is known to exist: aiokafka would otherwise wait
        # for it until the timeout and the error could not say what is wrong.
        if self.topic not in await consumer.topics():
            raise DirectoryUnavailable(
                self.topic,
                "it does not exist",
                hint="Create the platform's topics with `lintas topics sync`.",
            )
        # Without a group, the subscription is every partition (new ones included) and the
        # assignment follows as soon as the topic's metadata arrives.
        consumer.subscribe([self.topic])
        # aiokafka has no public event for "assigned"; the wait is a few milliseconds and
        # bounded by start()'s timeout.
        while not (partitions := consumer.assignment()):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(list(partitions))
        while True:
            behind = [tp for tp in partitions if await consumer.position(tp) < end[tp]]
            if not behind:
                break
            remaining_ms = max(1, int((deadline - time.monotonic()) * 1000))
            batches = await consumer.getmany(*behind, timeout_ms=min(_POLL_MS, remaining_ms))
            self._apply(batches)
        log.info(
            "directory view caught up with %s: %d OPDs, %d applications, %d subscriptions",
            self.topic,
            len(self._snapshot.opds),
            len(self._snapshot.applications),
            len(self._snapshot.subscriptions),
        )

    async def _follow(self) -> None:
        backoff = 0.5
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=_POLL_MS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # aiokafka reconnects by itself; an error here is worth a log, never an exit,
                # because a view that stops following would serve a stale directory silently.
                log.warning("directory view: reading %s failed: %r", self.topic, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
                continue
            backoff = 0.5
            if batches:
                self._apply(batches)

    async def stop(self) -> None:
        """Stop following and close the consumer; the view cannot be started again."""
        if self._state is ViewState.CLOSED:
            return
        self._state = ViewState.CLOSED
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, self._stop_timeout)
        await self._close_consumer()
        self._changed.set()  # wake wait_until() callers so they see the view is closed

    async def _close_consumer(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is None:
            return
        # aiokafka's stop() can hang when the broker is gone; never let it block the caller.
        try:
            await asyncio.wait_for(consumer.stop(), self._stop_timeout)
        except (TimeoutError, Exception):
            log.warning("directory view: Kafka consumer did not stop cleanly")

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
        if self._state is ViewState.RUNNING:
            _warn(f"Unclosed DirectoryView on {self.topic!r}", ResourceWarning, stacklevel=1)

    # -- applying records ---------------------------------------------------------------

    def _apply(self, batches: Mapping[Any, list[Any]]) -> None:
        changes = []
        for records in batches.values():
            for record in records:
                try:
                    changes.append(decode_change(record.key, record.value))
                except MalformedChange as exc:
                    self.skipped += 1
                    # Skipping keeps the entity's previous value: better stale than gone.
                    log.warning(
                        "directory view: skipped %s[%d]@%d: %s",
                        record.topic,
                        record.partition,
                        record.offset,
                        exc,
                    )
        if not changes:
            return
        self._snapshot = self._snapshot.applied(changes)
        for change in changes:
            for listener in tuple(self._listeners):
                try:
                    listener(change.key, change.value)
                except Exception:
                    log.exception("directory view: a change listener failed on %s", change.key)
        self._changed.set()
        self._changed = asyncio.Event()

    # -- reading ------------------------------------------------------------------------

    @property
    def snapshot(self) -> DirectorySnapshot:
        """The directory as of the last record read.

        Raises:
            RuntimeError: the view is not started (an empty directory would refuse every
                key and route nothing) or was stopped.
        """
        if self._state is not ViewState.RUNNING and self._state is not ViewState.STARTING:
            raise RuntimeError(f"DirectoryView is {self._state.value}; call start() first")
        return self._snapshot

    async def wait_until(
        self, predicate: Callable[[DirectorySnapshot], bool], timeout: float
    ) -> DirectorySnapshot:
        """Wait until ``predicate`` holds for the view's snapshot; return that snapshot.

        Raises:
            TimeoutError: it did not hold within ``timeout`` seconds.
            RuntimeError: the view is not running.
        """
        deadline = time.monotonic() + timeout
        while True:
            changed = self._changed
            snapshot = self.snapshot
            if predicate(snapshot):
                return snapshot
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"the directory view of {self.topic!r} did not reach the expected state "
                    f"within {timeout:g} s"
                )
            # On timeout the predicate is checked once more above, then the timeout reported.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    def on_change(self, callback: ChangeListener) -> Callable[[], None]:
        """Call ``callback(key, value)`` for every change read, after the snapshot has it.

        ``value`` is the entity's new value, or None when it was removed. Listeners added
        before :meth:`start` also see every entity while the view catches up. They run on
        the event loop between polls, so they must be quick (schedule slow work as a task);
        one that raises is logged and does not stop the view.

        Returns:
            A function that removes the listener.
        """
        self._listeners.append(callback)

        def remove() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return remove

    def verify_api_key(self, token: str) -> Application:
        """The application a presented API key belongs to, from memory (no database).

        Raises:
            InvalidApiKey: malformed, unknown, revoked or expired key, or a retired app.
            RuntimeError: the view is not running.
        """
        return self.snapshot.verify_api_key(token)

    def subscriptions_for(self, event_type_id: str) -> tuple[Subscription, ...]:
        """Active subscriptions naming ``event_type_id``, of active subscribers."""
        return self.snapshot.subscriptions_for(event_type_id)

    def route(self, event_type_id: str, record: Mapping[str, Any]) -> list[Route]:
        """Each subscription the event matches, with the payload its subscriber receives.

        Args:
            event_type_id: e.g. ``dukcapil.kematian_dicatat.v1``.
            record: the event's record as decoded from Avro.
        """
        return self.snapshot.route(event_type_id, record)

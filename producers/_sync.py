"""``Producer``: the blocking face of :class:`EventProducer`, for scripts and Django/Flask.

It runs an :class:`EventProducer` on an event loop of its own, in a daemon thread, and waits
for each call with a deadline derived from the settings, so a blocking call never hangs
either. All logic stays in the async producer.

Create it in each worker process after the fork (gunicorn ``post_fork``, uWSGI
``@postfork``, or lazily on first use): a thread and its sockets do not survive ``fork``.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import datetime as dt
import threading
from collections.abc import Coroutine, Iterable, Mapping
from types import TracebackType
from typing import Any, ClassVar, TypeVar

from lintas.schemas import EventModel, EventType

from ._producer import EventProducer
from .exceptions import ProducerClosed, ProducerError
from .types import Delivery, EventLike

__all__ = ["Producer"]

T = TypeVar("T")

# Added to every deadline: thread hand-over and the spool's fsync on a slow disk.
_SLACK_S = 10.0


class Producer:
    """A blocking producer: the same arguments and guarantees as :class:`EventProducer`.

    Usage (Django: one per process, e.g. in ``AppConfig.ready`` or lazily)::

        from lintas.producers import Producer

        producer = Producer(app="siak", opd="dukcapil")
        delivery = producer.send(kematian)       # blocks until acknowledged or spooled
        producer.close()                         # also done at interpreter exit

    Raises:
        The errors of :meth:`EventProducer.start` (``NotAuthorized``, ``SpoolLocked``), and
        ``ProducerError`` when a call overruns its deadline (which the async producer's own
        deadlines make very unlikely).
    """

    _async_class: ClassVar[type[EventProducer]] = EventProducer
    """The async producer it runs (:class:`lintas.producers.testing.FakeProducer` runs the
    fake one)."""

    def __init__(self, **kwargs: Any) -> None:
        self._producer = self._async_class(**kwargs)
        settings = self._producer.settings.producer
        self._send_deadline = 2 * settings.send_timeout_s + _SLACK_S
        self._stop_deadline = 3 * settings.stop_timeout_s + _SLACK_S
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"lintas-producer-{self.name}", daemon=True
        )
        self._thread.start()
        self._closed = False
        try:
            self._call(self._producer.start(), settings.start_timeout_s + _SLACK_S)
        except BaseException:
            self._closed = True
            self._shutdown_loop()
            raise
        atexit.register(self.close)

    @property
    def name(self) -> str:
        return self._producer.name

    @property
    def spooling(self) -> bool:
        return self._producer.spooling

    @property
    def spooled(self) -> int:
        return self._producer.spooled

    def send(
        self,
        event: EventModel | Mapping[str, Any],
        *,
        event_type: str | EventType | None = None,
        event_id: str | None = None,
        time: dt.datetime | None = None,
        subject: str | None = None,
        source: str | None = None,
        headers: Mapping[str, bytes] | None = None,
    ) -> Delivery:
        """Send one event; see :meth:`EventProducer.send`."""
        return self._call(
            self._producer.send(
                event,
                event_type=event_type,
                event_id=event_id,
                time=time,
                subject=subject,
                source=source,
                headers=headers,
            ),
            self._send_deadline,
        )

    def send_many(self, events: Iterable[EventLike]) -> list[Delivery]:
        """Send events in order; see :meth:`EventProducer.send_many`."""
        return self._call(self._producer.send_many(list(events)), self._send_deadline)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything is in Kafka; see :meth:`EventProducer.flush`."""
        bound = (timeout if timeout is not None else self._stop_deadline) + _SLACK_S
        self._call(self._producer.flush(timeout), bound)

    def close(self) -> None:
        """Stop the producer (bounded, see :meth:`EventProducer.stop`) and its thread."""
        if self._closed:
            return
        atexit.unregister(self.close)
        try:
            self._call(self._producer.stop(), self._stop_deadline)
        finally:
            self._closed = True
            self._shutdown_loop()

    def __enter__(self) -> Producer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, coro: Coroutine[Any, Any, T], deadline: float) -> T:
        if self._closed:
            coro.close()
            raise ProducerClosed("stopped")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(deadline)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise ProducerError(
                f"The producer {self.name} did not answer within {deadline:g} s."
            ) from None

    def _shutdown_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_SLACK_S)
        if not self._thread.is_alive():
            self._loop.close()

"""The ordered hand-over of encoded records to Kafka, through the spool when it must.

Two modes:

- **direct**: records go to the broker; the caller gets ``sent`` once the broker has
  acknowledged them (acks=all).
- **spooling**: records are appended to the spool (fsync'd) and the caller gets
  ``spooled``; one forwarder task sends the spool's records, oldest first, and deletes
  them once acknowledged. When the spool is empty again, the mode switches back to direct.

Order per key holds because records reach Kafka in the order they were handed over:

- Records are handed to aiokafka under one lock, so the order of calls is the order on
  each partition; a key always maps to the same partition.
- A failure (a send not acknowledged within ``send_timeout_s``, a lost connection) is
  handled under the same lock: every record of every call still in flight on that producer
  that is not acknowledged is appended to the spool, oldest call first, and the mode turns
  to spooling before anyone else can hand anything over. A record of the same partition
  handed over later cannot have been acknowledged before an earlier unacknowledged one
  (one produce request per broker at a time, batches in order).
- The failed producer is never used again (see :mod:`._kafka`); the forwarder uses a new
  one. A copy of a record the old producer still delivered late is a duplicate with the
  same event id, behind the original: downstream de-duplicates by event id.
- While the spool holds anything, new records go behind it.

Every wait is bounded: sends by ``send_timeout_s``, connecting by ``start_timeout_s``,
stopping by ``stop_timeout_s``; the forwarder backs off (1 s doubling to 30 s) while the
broker stays away, and a ``flush`` makes it try at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaError

from lintas.kafka import KafkaConnection
from lintas.settings import ProducerSettings

from ._flight import Flight
from ._kafka import KafkaLink, Part, Unreachable, classify
from ._record import Record
from ._spool import Spool, SpooledRecord
from .exceptions import (
    DeliveryFailed,
    FlushTimeout,
    NotAuthenticated,
    NotAuthorized,
    ProducerClosed,
    ProducerError,
    SpoolFull,
    TopicNotFound,
)
from .metrics import ProducerMetrics
from .types import Delivery, DeliveryStatus

__all__ = ["Pipeline"]

log = logging.getLogger("lintas.producers")

# Records per forwarding round: one round is one wait for acknowledgements, so bigger rounds
# forward faster, but a round must fit in send_timeout_s. A round that times out halves the
# next one (down to _MIN_CHUNK), so a slow link (a kabupaten office on 1 Mbit/s) still makes
# progress instead of timing out on the same round forever; success doubles it again.
FORWARD_CHUNK = 2000
_MIN_CHUNK = 20
_MIN_BACKOFF = 1.0
_MAX_BACKOFF = 30.0
SENT, SPOOLED = DeliveryStatus.SENT, DeliveryStatus.SPOOLED


class Pipeline:
    """Direct sends, the spool and its forwarder, for one spool slot.

    Args:
        spool: the open spool slot (the pipeline closes it on :meth:`stop`).
        conn: the Kafka connection.
        settings: timeouts and batch settings.
        kafka_options: aiokafka producer options.
        metrics: where to count.
    """

    def __init__(
        self,
        *,
        spool: Spool,
        conn: KafkaConnection,
        settings: ProducerSettings,
        kafka_options: dict[str, Any],
        metrics: ProducerMetrics,
    ) -> None:
        self._spool = spool
        self._conn = conn
        self._send_timeout = settings.send_timeout_s
        self._start_timeout = settings.start_timeout_s
        self._stop_timeout = settings.stop_timeout_s
        self._options = kafka_options
        self._metrics = metrics
        self._lock = asyncio.Lock()
        self._link: KafkaLink | None = None
        self._spooling = True
        self._flights: dict[int, Flight] = {}
        self._next_flight = 0
        self._in_flight = 0
        self._closing: set[asyncio.Task[bool]] = set()
        self._forwarder: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._changed: asyncio.Future[None] | None = None
        self._stopping = False
        self._denied: NotAuthorized | None = None
        self._chunk = FORWARD_CHUNK
        self.principal = f"User:{conn.username}"

    # -- state, for callers and tests ----------------------------------------------------

    @property
    def spooling(self) -> bool:
        """Whether new records go to the spool (broker away, or the spool not yet empty)."""
        return self._spooling

    @property
    def in_flight(self) -> int:
        """Records handed to Kafka by callers and not yet acknowledged (or spooled)."""
        return self._in_flight

    @property
    def spool(self) -> Spool:
        return self._spool

    @property
    def spooled(self) -> int:
        """Records waiting in the spool."""
        return self._spool.records

    @property
    def spool_path(self) -> Path:
        return self._spool.path

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect within ``start_timeout_s``; start offline (spooling) when that fails.

        Raises:
            NotAuthorized: the broker answered and refuses the principal outright.
        """
        try:
            self._link = await self._connect()
        except Unreachable as exc:
            log.warning(
                "Kafka is unreachable (%s); events are spooled in %s until it is back",
                exc,
                self._spool.path,
            )
        self._spooling = self._link is None or self._spool.records > 0
        self._update_spool_gauges()
        self._forwarder = asyncio.create_task(self._forward_loop(), name="lintas-forwarder")

    async def stop(self, *, flush: bool = True) -> None:
        """Flush for up to ``stop_timeout_s``, spool what is left, close everything.

        Never hangs: each step has its own deadline, and an aiokafka producer that will not
        stop is taken apart (see :mod:`._kafka`).

        Args:
            flush: try to deliver what is pending first (skipped by callers that just did).
        """
        if self._stopping:
            return
        if flush and self._forwarder is not None:
            try:
                await self.flush(self._stop_timeout)
            except FlushTimeout as exc:
                log.warning("Stopping with events not yet in Kafka: %s", exc.message)
        self._stopping = True
        if self._forwarder is not None:
            self._forwarder.cancel()
            await asyncio.wait({self._forwarder}, timeout=self._stop_timeout)
        async with self._lock:
            link = self._link
            if link is not None and self._flights:
                await self._failover(link, "the producer is stopping")
            link, self._link = self._link, None
        if link is not None:
            await link.close(self._stop_timeout)
        if self._closing:
            await asyncio.wait(self._closing, timeout=2 * self._stop_timeout)
        await self._spool.close()
        self._pulse()

    async def flush(self, timeout: float) -> None:
        """Wait until every record handed over is acknowledged and the spool is empty.

        Raises:
            FlushTimeout: not done within ``timeout`` (nothing is lost: see the error).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._wake.set()  # the forwarder tries now rather than after its back-off
        # Connected but still spooling means the forwarder is about to switch back to
        # direct sends: wait for it, so that after a flush new events are sent directly.
        while self._flights or self._spool.records or (self._spooling and self._link):
            remaining = deadline - loop.time()
            if remaining <= 0 or self._stopping:
                raise FlushTimeout(timeout, in_flight=self._in_flight, spooled=self._spool.records)
            await asyncio.wait({self._changed_future()}, timeout=remaining)

    # -- sending -------------------------------------------------------------------------

    async def submit(self, records: Sequence[Record]) -> list[Delivery]:
        """Hand records over, in order; their deliveries, in the same order.

        Raises:
            SpoolFull: they had to be spooled and do not fit (none of them was taken).
            NotAuthorized: the broker refuses the principal on a topic of theirs.
            TopicNotFound: a topic does not exist.
            DeliveryFailed: the broker refused a record for good.
            ProducerClosed: the pipeline is stopping.
        """
        if self._stopping:
            raise ProducerClosed("stopping")
        if not records:
            return []
        loop = asyncio.get_running_loop()
        flight: Flight | None = None
        try:
            async with self._lock:
                link = self._link
                if self._spooling or link is None:
                    return await self._to_spool(records)
                # The deadline starts once it is this call's turn: waiting for the lock
                # behind other callers is not the broker being slow.
                deadline = loop.time() + self._send_timeout
                try:
                    await link.ensure_topics({r.topic for r in records}, self._send_timeout)
                except Unreachable as exc:
                    await self._failover(link, exc)
                    return await self._to_spool(records)
                except (NotAuthorized, TopicNotFound) as exc:
                    self._metrics.failed(_reason(exc), len(records))
                    raise
                flight = Flight(self._next_flight, records, link)
                self._next_flight += 1
                self._flights[flight.id] = flight
                self._in_flight += len(records)
                self._metrics.in_flight.inc(len(records))
                try:
                    async with asyncio.timeout_at(deadline):
                        await link.enqueue(records, flight.parts)
                except Exception as exc:
                    # A deadline, a lost connection, or aiokafka failing in a way of its own:
                    # whatever was handed over may or may not arrive, so all of it is spooled
                    # (still under the lock: nothing else gets in between) and the producer
                    # is replaced.
                    await self._failover(link, exc)
                else:
                    flight.watch()
            if not flight.taken.done():
                await asyncio.wait(
                    {flight.settled, flight.taken},
                    timeout=max(deadline - loop.time(), 0),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if not flight.taken.done() and (not flight.settled.done() or flight.needs_spool()):
                    async with self._lock:
                        cause = (
                            "delivery failed"
                            if flight.settled.done()
                            else "no acknowledgement in time"
                        )
                        await self._failover(link, cause)
            return self._outcome(flight)
        finally:
            # Also on cancellation: the caller got no promise for these records.
            if flight is not None:
                self._flights.pop(flight.id, None)
                self._in_flight -= len(records)
                self._metrics.in_flight.dec(len(records))
                self._pulse()

    async def _to_spool(self, records: Sequence[Record]) -> list[Delivery]:
        if self._denied is not None:
            # The forwarder found the principal refused outright: spooling more would only
            # hide that, so callers get the error instead.
            self._metrics.failed("not_authorized", len(records))
            if isinstance(self._denied, NotAuthenticated):
                raise NotAuthenticated(self._denied.principal)
            raise NotAuthorized(self._denied.topic, self._denied.principal)
        try:
            await self._spool.append(records)
        except SpoolFull:
            self._metrics.failed("spool_full", len(records))
            raise
        self._metrics.spooled.inc(len(records))
        self._update_spool_gauges()
        self._wake.set()
        return [Delivery(r.event_id, r.topic, SPOOLED) for r in records]

    async def _failover(self, link: KafkaLink, cause: object) -> None:
        """Spool what ``link`` has not delivered and retire it. Hold ``self._lock``."""
        if self._link is not link:
            return  # an earlier failover already retired it and took its flights
        log.warning("Kafka did not take the events (%s); spooling them and reconnecting", cause)
        self._link = None
        self._spooling = True
        link.usable = False
        flights = [f for f in self._flights.values() if f.link is link]
        for flight in flights:
            del self._flights[flight.id]
        for flight in flights:
            missing = flight.unacknowledged()
            try:
                await self._spool.append([flight.records[i] for i in missing])
                flight.spooled = frozenset(missing)
                self._metrics.spooled.inc(len(missing))
            except ProducerError as exc:
                flight.spool_error = exc
            except Exception as exc:  # a disk error: this call fails, the others go on
                log.exception("Could not write to the spool %s", self._spool.path)
                flight.spool_error = ProducerError(f"The spool could not be written: {exc}")
            if not flight.taken.done():
                flight.taken.set_result(None)
        self._update_spool_gauges()
        self._retire(link)
        self._wake.set()
        self._pulse()

    def _outcome(self, flight: Flight) -> list[Delivery]:
        records = flight.records
        out: list[Delivery | None] = [None] * len(records)
        for i in flight.spooled:
            r = records[i]
            out[i] = Delivery(r.event_id, r.topic, SPOOLED)
        denied: str | None = None
        refused: tuple[int, BaseException] | None = None
        sent: dict[str, int] = {}
        for part in flight.parts:
            future = part.future
            if not future.done() or future.cancelled():
                continue
            exc = future.exception()
            if exc is None:
                meta = future.result()
                base, partition = meta.offset, meta.partition
                for k, i in enumerate(part.indexes):
                    r = records[i]
                    out[i] = Delivery(
                        r.event_id, r.topic, SENT, partition, base + k if base >= 0 else None
                    )
                sent[meta.topic] = sent.get(meta.topic, 0) + len(part.indexes)
                continue
            kind = classify(exc)
            if kind == "denied" and part.indexes:
                denied = records[part.indexes[0]].topic
            elif kind == "refused" and part.indexes:
                refused = (part.indexes[0], exc)
        for topic, count in sent.items():
            self._metrics.sent(topic, count)
        done = [d for d in out if d is not None]
        lost = len(records) - len(done)
        if denied is not None:
            self._metrics.failed("not_authorized", lost)
            raise NotAuthorized(denied, self.principal, deliveries=done)
        if refused is not None:
            r = records[refused[0]]
            self._metrics.failed("refused", lost)
            raise DeliveryFailed(r.topic, r.event_id, repr(refused[1]), deliveries=done)
        if lost:
            error = flight.spool_error or ProducerError("The events could not be spooled.")
            self._metrics.failed(_reason(error), lost)
            error.deliveries = tuple(done)
            raise error
        return done  # every position is filled

    # -- forwarding ----------------------------------------------------------------------

    async def _connect(self) -> KafkaLink:
        link = KafkaLink(self._conn, self._options)
        await link.start(self._start_timeout)
        return link

    def _retire(self, link: KafkaLink) -> None:
        link.usable = False
        task = asyncio.create_task(link.close(self._stop_timeout), name="lintas-close-producer")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _forward_loop(self) -> None:
        backoff = _MIN_BACKOFF
        while not self._stopping:
            if not self._spooling:
                await self._sleep(None)
                continue
            try:
                link = self._link
                if link is None or not link.usable:
                    link = await self._connect()
                    self._denied = None
                    async with self._lock:
                        self._link = link
                await self._forward_round(link)
                backoff = _MIN_BACKOFF
                continue
            except Unreachable as exc:
                log.info("Kafka still unreachable (%s); retrying in %.0f s", exc, backoff)
            except NotAuthorized as exc:
                self._denied = exc
                log.error("%s Spooled events stay in %s.", exc.message, self._spool.path)
            except TopicNotFound as exc:
                log.error("%s Spooled events wait for it.", exc.message)
            except Exception:  # a bug must not end forwarding for the process's lifetime
                log.exception("Forwarding the spool %s failed", self._spool.path)
            await self._sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)

    async def _forward_round(self, link: KafkaLink) -> None:
        entries = await self._spool.peek(self._chunk)
        if not entries:
            await self._maybe_go_direct(link)
            return
        try:
            await link.ensure_topics({e.record.topic for e in entries}, self._send_timeout)
        except NotAuthorized as exc:
            refused = [e for e in entries if e.record.topic == exc.topic]
            if not refused:
                raise
            await self._reject(
                refused, "not_authorized", f"not authorized: {exc.principal} on {exc.topic}"
            )
            return
        parts: list[Part] = []
        timed_out = False
        try:
            async with asyncio.timeout(self._send_timeout):
                await link.enqueue([e.record for e in entries], parts)
                if parts:
                    await asyncio.wait([p.future for p in parts])
        except (TimeoutError, KafkaError, Unreachable) as exc:
            timed_out = True
            log.warning("Forwarding timed out or failed (%r); reconnecting", exc)
        acked: list[SpooledRecord] = []
        denied: list[SpooledRecord] = []
        refused_by: dict[str, list[SpooledRecord]] = {}
        retry = timed_out
        for part in parts:
            future = part.future
            if not future.done() or future.cancelled():
                retry = True
                continue
            error = future.exception()
            batch = [entries[i] for i in part.indexes]
            if error is None:
                acked.extend(batch)
            elif classify(error) == "denied":
                denied.extend(batch)
            elif classify(error) == "refused":
                refused_by.setdefault(repr(error), []).extend(batch)
            else:
                retry = True
        await self._spool.delete(acked)
        self._metrics.forwarded.inc(len(acked))
        if denied:
            topics = sorted({e.record.topic for e in denied})
            await self._reject(
                denied, "not_authorized", f"not authorized: {link.principal} on {', '.join(topics)}"
            )
        for reason, batch in refused_by.items():
            await self._reject(batch, "refused", f"refused by the broker: {reason}")
        self._update_spool_gauges()
        if retry:
            self._chunk = max(self._chunk // 2, _MIN_CHUNK)
            async with self._lock:
                if self._link is link:
                    self._link = None
            self._retire(link)
            self._pulse()
            raise Unreachable("the broker did not acknowledge forwarded events in time")
        self._chunk = min(self._chunk * 2, FORWARD_CHUNK)
        await self._maybe_go_direct(link)
        self._pulse()

    async def _maybe_go_direct(self, link: KafkaLink) -> None:
        """Switch back to direct sends once the spool is empty (under the lock, so that no
        record can be appended to the spool in between)."""
        async with self._lock:
            if self._spool.records == 0 and self._link is link and link.usable:
                if self._spooling:
                    log.info("Spool %s is empty; sending directly again", self._spool.path)
                self._spooling = False
                self._pulse()

    async def _reject(self, entries: Sequence[SpooledRecord], code: str, reason: str) -> None:
        log.error(
            "%d spooled events are refused for good (%s); kept apart in %s, see "
            "`lintas spool status`",
            len(entries),
            reason,
            self._spool.path,
        )
        await self._spool.reject(entries, reason)
        self._metrics.failed(code, len(entries))
        self._update_spool_gauges()

    # -- plumbing ------------------------------------------------------------------------

    async def _sleep(self, seconds: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    def _changed_future(self) -> asyncio.Future[None]:
        if self._changed is None or self._changed.done():
            self._changed = asyncio.get_running_loop().create_future()
        return self._changed

    def _pulse(self) -> None:
        changed, self._changed = self._changed, None
        if changed is not None and not changed.done():
            changed.set_result(None)

    def _update_spool_gauges(self) -> None:
        self._metrics.spool_size(self._spool.records, self._spool.bytes)


def _reason(exc: BaseException) -> str:
    return {
        NotAuthorized: "not_authorized",
        TopicNotFound: "topic_not_found",
        SpoolFull: "spool_full",
        DeliveryFailed: "refused",
    }.get(type(exc), "error")

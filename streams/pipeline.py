"""Every OPD record through the stages, with the at-least-once promise kept.

Per record: process it (validate, canonicalize, route), drop it if its id was seen (stage 4),
produce its outputs (canonical record and deliveries, or its dead letter) and return without
waiting for the broker: the delivery callback remembers the id, counts the outcome and, once
the id's changelog entry is written too, acks the record's offset. So a committed offset
always stands for delivered output and a durable id, and many records are in flight at once
instead of one broker round trip per record or batch. A repeat of an event still in flight is
acked only once the original is delivered. Which offsets may then be committed is
:mod:`lintas.streams.positions`' job.

A crash before the callback leaves the offset uncommitted: the record is processed again (at
least once), and dedup or the store's event-id key removes the repeat. A delivery that fails
is sent again, with back-off, until it succeeds; its offset stays unacked meanwhile.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from lintas.exceptions import LintasError

from .dedup import DedupIndex
from .metrics import Outcome, WindowCounter
from .processor import Accepted, Processor, SourceRecord
from .processor import Outcome as RecordOutcome

__all__ = ["Ack", "Pipeline", "PrepareOutput", "Send"]

log = logging.getLogger(__name__)

Send = Callable[[str, bytes | None, bytes | None, list[tuple[str, bytes]]], Awaitable[Any]]
"""``send(topic, key, value, headers)`` queues a record and returns its delivery future
(faust's ``producer.send``)."""

Ack = Callable[[], object]
"""Marks the source record as done (:mod:`lintas.streams.positions` then may commit it)."""

PrepareOutput = Callable[[RecordOutcome], Awaitable[None]]
"""Called before an output is sent: creates the topic it needs if it does not exist yet."""

# Back off from a broker or registry that fails, up to half a minute between attempts.
_FIRST_RETRY_S = 0.5
_MAX_RETRY_S = 30.0


def dedup_key(record: SourceRecord, outcome: RecordOutcome) -> str:
    """An accepted event is known by its id; a dead letter by where it was read, so a record
    reprocessed after a crash is not dead-lettered twice (a replay has new coordinates)."""
    if isinstance(outcome, Accepted):
        return outcome.dedup_key
    return f"@{record.topic}:{record.partition}:{record.offset}"


class Pipeline:
    """Processes records one by one, with up to ``max_in_flight`` outputs awaiting the broker.

    Args:
        processor: validation and canonicalization.
        dedup: the ids seen within the horizon.
        counter: the metrics windows.
        send: how outputs are produced.
        max_in_flight: outputs sent but not acknowledged; :meth:`submit` waits beyond it.
        prepare_output: creates an output's topic when it is new.
    """

    def __init__(
        self,
        processor: Processor,
        dedup: DedupIndex,
        counter: WindowCounter,
        send: Send,
        *,
        max_in_flight: int = 1000,
        prepare_output: PrepareOutput | None = None,
    ) -> None:
        self._processor = processor
        self._dedup = dedup
        self._counter = counter
        self._send = send
        self._prepare_output = prepare_output
        self._slots = asyncio.Semaphore(max_in_flight)
        # Each in-flight key with the acks of repeats that arrived while it was in flight: a
        # repeat is done only once the original is delivered.
        self._in_flight: dict[str, list[Ack]] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._retries: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        """Outputs sent and not yet acknowledged."""
        return len(self._in_flight)

    async def submit(self, record: SourceRecord, ack: Ack) -> None:
        """Process ``record`` and send its output; ``ack`` is called once it is delivered.

        Waits while ``max_in_flight`` outputs are unacknowledged, and while the registry is
        unreachable (retrying), so the stream slows down instead of dead-lettering good events.
        """
        now = dt.datetime.now(dt.UTC)
        outcome = await self._process(record, now)
        key = dedup_key(record, outcome)
        waiting = self._in_flight.get(key)
        if waiting is not None or self._dedup.seen(key, _millis(now)):
            self._counter.add(outcome.opd, outcome.event_type, Outcome.DUPLICATE, now)
            if waiting is not None:
                waiting.append(ack)  # done once the original is delivered
            else:
                ack()
            return
        if self._prepare_output is not None:
            await self._prepare_output(outcome)
        await self._slots.acquire()
        self._in_flight[key] = []
        self._idle.clear()
        await self._start_send(record, outcome, key, ack, now, _FIRST_RETRY_S)

    async def drain(self) -> None:
        """Wait until every output sent so far is delivered."""
        await self._idle.wait()

    async def _process(self, record: SourceRecord, now: dt.datetime) -> RecordOutcome:
        delay = _FIRST_RETRY_S
        while True:
            try:
                return await self._processor.process(record, now=now)
            except LintasError as exc:  # only retriable ones leave process()
                log.warning(
                    "record %s:%s@%s waits %.1f s: %s",
                    record.topic,
                    record.partition,
                    record.offset,
                    delay,
                    exc,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_RETRY_S)

    async def _start_send(
        self,
        record: SourceRecord,
        outcome: RecordOutcome,
        key: str,
        ack: Ack,
        now: dt.datetime,
        delay: float,
    ) -> None:
        outputs = outcome.outputs()
        futures = [await self._send(o.topic, o.key, o.value, o.headers) for o in outputs]
        sent = futures[0] if len(futures) == 1 else asyncio.gather(*futures)

        def delivered(done: asyncio.Future[Any]) -> None:
            error = done.exception() if not done.cancelled() else asyncio.CancelledError()
            if error is not None:
                # All of the record's outputs go again: a subscriber may see one twice, which
                # at-least-once allows and the event id reveals.
                log.error(
                    "%s not acknowledged (%r); sending it again in %.1f s",
                    outcome.topic,
                    error,
                    delay,
                )
                task = asyncio.ensure_future(self._resend(record, outcome, key, ack, now, delay))
                self._retries.add(task)
                task.add_done_callback(self._retries.discard)
                return
            # Remember before leaving in-flight: a repeat arriving now is still caught.
            written = self._dedup.remember(key, record.partition, _millis(now))
            repeats = self._in_flight.pop(key, [])
            if not self._in_flight:
                self._idle.set()
            self._slots.release()
            result = Outcome.ACCEPTED if isinstance(outcome, Accepted) else Outcome.DEAD_LETTERED
            self._counter.add(outcome.opd, outcome.event_type, result, now)

            # Acked once the id is durable too, so a committed offset implies both.
            def ack_all(_: object = None) -> None:
                ack()
                for repeat in repeats:
                    repeat()

            if written is None:
                ack_all()
            else:
                written.add_done_callback(ack_all)

        sent.add_done_callback(delivered)

    async def _resend(
        self,
        record: SourceRecord,
        outcome: RecordOutcome,
        key: str,
        ack: Ack,
        now: dt.datetime,
        delay: float,
    ) -> None:
        await asyncio.sleep(delay)
        await self._start_send(record, outcome, key, ack, now, min(delay * 2, _MAX_RETRY_S))


def _millis(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)

"""Rows that do not map to a valid event: to the dead-letter topic, and the capture goes on.

A capture dead letter follows the platform's convention for ``lintas.dlq`` (reason and
explanation in ``lintas.dlq.*`` headers, see :mod:`lintas.streams.dlq`), with what a
legacy row needs to be found again::

    key                        the row's primary key (one column: its value; else JSON)
    value                      the row as JSON (column -> value, dates and amounts as text)
    ce_id                      the event id the row would have had
    lintas.dlq.reason          unmappable_row
    lintas.dlq.message         the rule in words ("npwpd: String should match ...")
    lintas.dlq.field           the event field that failed, when one did
    lintas.dlq.event_type      the event type it was meant to become
    lintas.dlq.opd             the source's OPD
    lintas.dlq.source          capture/<source>/<table>
    lintas.dlq.key             the row's key again, as JSON
    lintas.dlq.op              insert, update, delete or snapshot
    lintas.dlq.position        where the change sits in the source
    lintas.dlq.time            when it was dead-lettered

No ``lintas.dlq.topic`` is set: the value is not an Avro event, so ``lintas dlq replay``
leaves these alone. Fix the mapping (or the row in the application); the next change of
the row is captured as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from lintas.kafka import KafkaConnection, create_producer

from .exceptions import DeadLetterFailed
from .types import Change

__all__ = ["REASON", "DeadLetterWriter", "DeadRow", "dead_row_record"]

REASON = "unmappable_row"
_PREFIX = "lintas.dlq."
_MESSAGE_MAX_CHARS = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadRow:
    """A change that did not become a valid event, and why."""

    change: Change
    source: str
    opd: str
    event_type: str | None
    event_id: str
    message: str
    field: str | None = None


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


def _key_text(key: Sequence[Any]) -> str:
    if len(key) == 1:
        return _json_default(key[0]) if not isinstance(key[0], str) else key[0]
    return orjson.dumps(list(key), default=_json_default).decode()


def dead_row_record(
    dead: DeadRow, *, now: dt.datetime | None = None
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key, value and headers of the dead letter for ``dead``."""
    change = dead.change
    now = now or dt.datetime.now(dt.UTC)
    message = dead.message
    if len(message) > _MESSAGE_MAX_CHARS:
        message = message[: _MESSAGE_MAX_CHARS - 3] + "..."
    value = orjson.dumps(dict(change.row), default=_json_default, option=orjson.OPT_NON_STR_KEYS)
    key_json = orjson.dumps(list(change.key), default=_json_default)
    headers = [
        ("ce_id", dead.event_id.encode()),
        ("content-type", b"application/json"),
        (_PREFIX + "reason", REASON.encode()),
        (_PREFIX + "message", message.encode()),
        (_PREFIX + "opd", dead.opd.encode()),
        (_PREFIX + "source", f"capture/{dead.source}/{change.table}".encode()),
        (_PREFIX + "key", key_json),
        (_PREFIX + "op", change.op.value.encode()),
        (_PREFIX + "position", change.position.encode()),
        (_PREFIX + "time", now.astimezone(dt.UTC).isoformat(timespec="milliseconds").encode()),
    ]
    if dead.field:
        headers.append((_PREFIX + "field", dead.field.encode()))
    if dead.event_type:
        headers.append((_PREFIX + "event_type", dead.event_type.encode()))
    return _key_text(change.key).encode(), value, headers


class DeadLetterWriter:
    """Writes dead letters to ``topic`` and waits for Kafka's acknowledgement.

    Args:
        conn: the Kafka connection (the capture's principal may write ``lintas.dlq``).
        topic: the dead-letter topic.
        timeout_s: how long a write may take before :class:`DeadLetterFailed` (retried).
    """

    def __init__(self, conn: KafkaConnection, topic: str, *, timeout_s: float) -> None:
        self._conn = conn
        self.topic = topic
        self._timeout_s = timeout_s
        self._producer: Any = None

    async def send(self, rows: Sequence[DeadRow]) -> None:
        """Write ``rows`` and wait until every one is acknowledged.

        Raises:
            DeadLetterFailed: not acknowledged within the timeout (the batch is retried).
        """
        if not rows:
            return
        try:
            await asyncio.wait_for(self._send(rows), self._timeout_s)
        except TimeoutError as exc:
            await self.stop()  # aiokafka may retry forever: start afresh next time
            raise DeadLetterFailed(self.topic, f"no answer in {self._timeout_s:g} s") from exc
        except Exception as exc:  # aiokafka's own errors: the broker refused or went away
            await self.stop()
            raise DeadLetterFailed(self.topic, f"{type(exc).__name__}: {exc}") from exc

    async def _send(self, rows: Sequence[DeadRow]) -> None:
        if self._producer is None:
            producer = create_producer(self._conn.with_client_id("lintas-capture-dlq"))
            await producer.start()
            self._producer = producer
        futures = []
        for row in rows:
            key, value, headers = dead_row_record(row)
            futures.append(
                await self._producer.send(self.topic, key=key, value=value, headers=headers)
            )
        await asyncio.gather(*futures)

    async def stop(self) -> None:
        """Close the Kafka producer, bounded (aiokafka's stop can hang with the broker away)."""
        producer, self._producer = self._producer, None
        if producer is not None:
            # Already broken, or timed out: there is nothing more to flush.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 5)

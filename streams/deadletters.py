"""Reading the dead-letter topic, and replaying dead letters to their source topics.

What ``lintas dlq list|show|replay`` runs. Replay sends a dead letter's original key, value
and headers (``ce_id`` included, so the event keeps its id) back to the topic it came from,
with a ``lintas.replay.of`` header naming the dead letter; the workers then process it like
any new record. Replay after fixing the cause (a schema registered late, a region code added
to the reference); replaying twice is harmless, dedup keeps one canonical event.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from lintas.audit import AuditAction, AuditLog
from lintas.kafka import KafkaConnection, create_consumer, create_producer
from lintas.schemas import AvroDeserializer, SchemaError, parse_header

from ._kafka import partition_ids
from .dlq import REPLAY_HEADER, DeadLetter, parse_dead_letter
from .exceptions import DeadLetterNotFound

__all__ = [
    "Decoded",
    "Replayed",
    "decode_dead_letter",
    "find_dead_letter",
    "read_dead_letters",
    "replay_dead_letters",
    "select_dead_letters",
    "summarize",
]

_HEX_PREVIEW = 64


async def read_dead_letters(conn: KafkaConnection, topic: str) -> list[DeadLetter]:
    """Every record of the dead-letter topic, oldest first per partition."""
    from aiokafka import TopicPartition

    letters: list[DeadLetter] = []
    partitions = await partition_ids(conn, topic)
    if not partitions:
        return letters
    consumer = create_consumer(conn, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batch.items():
                letters += [
                    parse_dead_letter(
                        partition=r.partition,
                        offset=r.offset,
                        key=r.key,
                        value=r.value,
                        headers=list(r.headers or ()),
                    )
                    for r in records
                    if r.offset < ends[tp]
                ]
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
    finally:
        await consumer.stop()
    return letters


def summarize(letters: Iterable[DeadLetter]) -> Counter[tuple[str, str]]:
    """How many dead letters per (reason, OPD)."""
    return Counter((letter.reason, letter.opd or "-") for letter in letters)


def select_dead_letters(
    letters: Iterable[DeadLetter],
    *,
    reasons: Sequence[str] = (),
    opds: Sequence[str] = (),
    event_ids: Sequence[str] = (),
    references: Sequence[str] = (),
) -> list[DeadLetter]:
    """The dead letters matching every given filter (an empty filter matches all)."""
    return [
        letter
        for letter in letters
        if (not reasons or letter.reason in reasons)
        and (not opds or letter.opd in opds)
        and (not event_ids or letter.event_id in event_ids)
        and (not references or letter.reference in references)
    ]


def find_dead_letter(letters: Iterable[DeadLetter], reference: str, topic: str) -> DeadLetter:
    """The dead letter ``<partition>:<offset>`` (or with that event id).

    Raises:
        DeadLetterNotFound: no such record.
    """
    for letter in letters:
        if reference in (letter.reference, letter.event_id):
            return letter
    raise DeadLetterNotFound(reference, topic)


@dataclass(frozen=True, slots=True, kw_only=True)
class Decoded:
    """A dead letter's value, decoded as far as it goes.

    Attributes:
        schema_id: the framed schema id, when the value is framed.
        record: the decoded record (JSON-safe), when it decodes.
        problem: why it does not decode further, when it does not.
        preview: the first bytes in hex, when it is not a record.
    """

    schema_id: int | None
    record: dict[str, Any] | None
    problem: str | None
    preview: str | None


async def decode_dead_letter(letter: DeadLetter, deserializer: AvroDeserializer) -> Decoded:
    """Decode a dead letter's value with its writer schema from the registry, if it can be."""
    value = letter.value
    if value is None:
        dropped = f"{letter.value_dropped} bytes" if letter.value_dropped else "no value"
        return Decoded(
            schema_id=None, record=None, problem=f"value dropped ({dropped})", preview=None
        )
    preview = value[:_HEX_PREVIEW].hex(" ")
    try:
        schema_id = parse_header(value)
    except SchemaError as exc:
        return Decoded(schema_id=None, record=None, problem=exc.message, preview=preview)
    try:
        record = await deserializer.deserialize(value, topic=letter.topic)
    except SchemaError as exc:
        return Decoded(schema_id=schema_id, record=None, problem=exc.message, preview=preview)
    return Decoded(schema_id=schema_id, record=_plain(record), problem=None, preview=None)


def _plain(value: Any) -> Any:
    """The record with dates, amounts, ids and bytes as text: printable as JSON."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dt.date | Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Replayed:
    """What happened to one dead letter on replay."""

    letter: DeadLetter
    sent: bool
    detail: str


async def replay_dead_letters(
    conn: KafkaConnection,
    letters: Sequence[DeadLetter],
    *,
    dlq_topic: str,
    audit: AuditLog | None = None,
) -> list[Replayed]:
    """Send each dead letter back to its source topic; one :class:`Replayed` per letter.

    A letter whose value was dropped for size, or whose source is unknown, is skipped and
    reported, never half-sent. With ``audit``, the replay is recorded (references and event
    ids, never the content) as done by :func:`lintas.audit.current_actor`.
    """
    producer = create_producer(conn.with_client_id("lintas-dlq-replay"))
    await producer.start()
    out: list[Replayed] = []
    try:
        futures = []
        sendable = []
        for letter in letters:
            if letter.value is None:
                out.append(Replayed(letter=letter, sent=False, detail="value was dropped"))
                continue
            if not letter.topic:
                out.append(Replayed(letter=letter, sent=False, detail="source topic unknown"))
                continue
            headers = [*letter.headers, (REPLAY_HEADER, f"{dlq_topic}:{letter.reference}".encode())]
            futures.append(
                await producer.send(
                    letter.topic, key=letter.key, value=letter.value, headers=headers
                )
            )
            sendable.append(letter)
        results = await asyncio.gather(*futures, return_exceptions=True)
        for letter, result in zip(sendable, results, strict=True):
            if isinstance(result, BaseException):
                out.append(Replayed(letter=letter, sent=False, detail=repr(result)))
            else:
                where = f"{letter.topic}:{result.partition}:{result.offset}"
                out.append(Replayed(letter=letter, sent=True, detail=where))
    finally:
        await producer.stop()
    if audit is not None:
        details = {
            "sent": [r.letter.reference for r in out if r.sent],
            "skipped": [r.letter.reference for r in out if not r.sent],
            "event_ids": [r.letter.event_id for r in out if r.letter.event_id],
        }
        await audit.record(None, AuditAction.DLQ_REPLAYED, dlq_topic, details)
    return out

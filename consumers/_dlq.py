"""A subscriber's dead-letter topic, ``lintas.deliver.<subscriber>.dlq``, shared by the
webhook deliverer and the subscriber SDK.

A dead letter is the delivery record exactly as it was routed (key, value and headers
untouched) with ``lintas.dlq.*`` headers added after the original ones, the convention of the
platform's other dead-letter topic (``lintas.dlq``)::

    lintas.dlq.reason      why: rejected, retries_exhausted, undecodable, handler_failed
    lintas.dlq.message     the last error in words
    lintas.dlq.subscriber  whose delivery failed
    lintas.dlq.attempts    how many attempts were made
    lintas.dlq.status      the last HTTP status (webhooks, when one came back)
    lintas.dlq.topic       where the record was read (the delivery topic), partition and
    lintas.dlq.partition   offset
    lintas.dlq.offset
    lintas.dlq.time        when it was dead-lettered (RFC 3339, UTC)

The broker never creates topics by itself, so the topic is created on first use with the
platform's partitioning and the dead-letter retention (``LINTAS_KAFKA__DLQ_RETENTION_DAYS``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from lintas.kafka import KafkaConnection, create_admin
from lintas.settings import KafkaSettings
from lintas.topics import Action, TopicChange, TopicSpec, apply_plan

__all__ = [
    "DLQ_HEADER_PREFIX",
    "DeadLetterTopics",
    "dead_letter_headers",
    "dlq_topic",
    "header_text",
    "original_headers",
]

DLQ_HEADER_PREFIX = "lintas.dlq."
_DAY_MS = 24 * 3600 * 1000
_MESSAGE_MAX_CHARS = 1000

Headers = Sequence[tuple[str, bytes | None]]


def dlq_topic(subscriber: str) -> str:
    """``lintas.deliver.<subscriber>.dlq``."""
    return f"lintas.deliver.{subscriber}.dlq"


def dead_letter_headers(
    headers: Headers,
    *,
    reason: str,
    message: str | None,
    subscriber: str,
    attempts: int,
    topic: str,
    partition: int,
    offset: int,
    status: int | None = None,
    now: dt.datetime | None = None,
) -> list[tuple[str, bytes | None]]:
    """The original headers (without older ``lintas.dlq.*`` ones), then the explanation."""
    message = message or reason
    if len(message) > _MESSAGE_MAX_CHARS:
        message = message[: _MESSAGE_MAX_CHARS - 3] + "..."
    now = now or dt.datetime.now(dt.UTC)
    p = DLQ_HEADER_PREFIX
    out = original_headers(headers)
    out += [
        (p + "reason", reason.encode()),
        (p + "message", message.encode()),
        (p + "subscriber", subscriber.encode()),
        (p + "attempts", str(attempts).encode()),
        (p + "topic", topic.encode()),
        (p + "partition", str(partition).encode()),
        (p + "offset", str(offset).encode()),
        (p + "time", now.astimezone(dt.UTC).isoformat(timespec="milliseconds").encode()),
    ]
    if status is not None:
        out.append((p + "status", str(status).encode()))
    return out


def original_headers(headers: Headers) -> list[tuple[str, bytes | None]]:
    """The headers as routed: without the ``lintas.dlq.*`` ones."""
    return [(k, v) for k, v in headers if not k.startswith(DLQ_HEADER_PREFIX)]


def header_text(headers: Headers, name: str) -> str | None:
    """The text of the last header called ``name``, or None."""
    found = None
    for key, value in headers:
        if key == name and value is not None:
            found = value.decode("utf-8", errors="replace")
    return found


class DeadLetterTopics:
    """Creates dead-letter topics on first use, once per process.

    Args:
        kafka: a connection allowed to create topics (Create on the topic, its prefix or the
            cluster); an existing topic is left as it is.
        settings: partitions, replication and dead-letter retention.
    """

    def __init__(self, kafka: KafkaConnection, settings: KafkaSettings) -> None:
        self._kafka = kafka
        self._settings = settings
        self._ready: set[str] = set()

    async def ensure(self, topics: set[str]) -> None:
        """Make sure each topic exists (creating the missing ones); idempotent."""
        missing = topics - self._ready
        if not missing:
            return
        s = self._settings
        specs = [
            TopicSpec(
                name=name,
                partitions=s.partitions,
                replication_factor=s.replication_factor,
                configs={
                    "min.insync.replicas": str(s.min_insync_replicas),
                    "retention.ms": str(int(s.dlq_retention_days * _DAY_MS)),
                },
                purpose="dead letters of a subscriber",
            )
            for name in sorted(missing)
        ]
        admin = create_admin(self._kafka)
        await admin.start()
        try:
            # Only missing topics are created, as the stream workers do: a topic's settings
            # are `lintas topics sync`'s, and who dead-letters (a subscriber, the deliverer)
            # may create its .dlq topic but not alter it.
            existing = set(await admin.list_topics())
            plan = [
                TopicChange(action=Action.CREATE, spec=s) for s in specs if s.name not in existing
            ]
            if plan:
                # A topic another process created meanwhile is no error: aiokafka leaves
                # per-topic errors in the answer, and apply_plan waits until it is visible.
                await apply_plan(admin, plan)
        finally:
            await admin.close()
        self._ready |= missing

"""Errors raised by the stream workers and the dead-letter tools.

Tree (this component's part of :mod:`lintas.exceptions`)::

    LintasError
    └── StreamsError                 something about stream processing went wrong
        ├── RecordRejected           one record breaks a rule: it goes to the dead-letter topic
        ├── PartitionMismatch        a source topic is not partitioned like the dedup changelog
        ├── RegistryRequired         no schema registry is configured or running
        └── DeadLetterNotFound       a `lintas dlq` reference names no dead letter

:class:`RecordRejected` never leaves a worker: the worker turns it into a dead letter and goes
on with the next record. The others stop a command with a message and a hint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lintas.exceptions import LintasError

if TYPE_CHECKING:
    from .dlq import Reason

__all__ = [
    "DeadLetterNotFound",
    "PartitionMismatch",
    "RecordRejected",
    "RegistryRequired",
    "StreamsError",
]


class StreamsError(LintasError):
    """Base class for the errors of :mod:`lintas.streams`."""


class RecordRejected(StreamsError):
    """A record cannot become a canonical event.

    Attributes:
        reason: the machine-readable reason code (the ``lintas.dlq.reason`` header).
        field: dotted path of the offending field (``anggota[1].nik``), or ``None`` when the
            record as a whole is at fault (garbage bytes, missing headers).
        detail: the rule in words, naming the value where that helps.
    """

    def __init__(self, reason: Reason, detail: str, *, field: str | None = None) -> None:
        where = f" at {field}" if field else ""
        super().__init__(f"Record rejected ({reason.value}{where}): {detail}")
        self.reason = reason
        self.field = field
        self.detail = detail


class PartitionMismatch(StreamsError):
    """A source topic's partition count differs from the dedup table's changelog topic.

    The dedup table is co-partitioned with its sources (an event's id is remembered in the
    changelog partition of the event's own partition), so every source needs the same count.
    """

    def __init__(self, topic: str, partitions: int, expected: int) -> None:
        super().__init__(
            f"Topic {topic} has {partitions} partitions; the stream workers need {expected} "
            "(the platform partition count).",
            hint="Run `lintas topics sync` with LINTAS_KAFKA__PARTITIONS set to the count the "
            "workers use; the workers subscribe to the topic once it matches.",
        )
        self.topic = topic
        self.partitions = partitions
        self.expected = expected


class RegistryRequired(StreamsError):
    """The workers and dead-letter tools need a schema registry, and none is known."""

    def __init__(self) -> None:
        super().__init__(
            "No schema registry is configured.",
            hint="Set LINTAS_REGISTRY_URL, or start the local stack with `lintas up`.",
        )


class DeadLetterNotFound(StreamsError):
    """A ``lintas dlq show`` or ``replay`` reference names no record of the dead-letter topic."""

    def __init__(self, reference: str, topic: str) -> None:
        super().__init__(
            f"No dead letter {reference} in {topic}.",
            hint="`lintas dlq list` shows the references (partition:offset) that exist.",
        )
        self.reference = reference
        self.topic = topic

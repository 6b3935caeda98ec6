"""A batch of consumed records per topic partition, and the offsets it covers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from aiokafka import TopicPartition

__all__ = ["Entry", "SinkBatch"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Entry(Generic[T]):
    """One consumed record: the offset it was read at and what it became (``None``: skipped)."""

    offset: int
    value: T | None


@dataclass(slots=True)
class SinkBatch(Generic[T]):
    """Records consumed since the last write, grouped by partition in offset order.

    ``next_offsets`` is what a write stores with the rows: per partition, the offset after
    the last record consumed, skipped records (dead letters) included, so that they are not
    read again.

    Attributes:
        number: the batch's place in the sink's sequence (1, 2, ...; 0 for a batch made
            outside the loop), so that a retried write knows it is the same batch.
        started_at: loop time of the first record (the batch's age bounds its delay).
    """

    number: int = 0
    entries: dict[TopicPartition, list[Entry[T]]] = field(default_factory=dict)
    next_offsets: dict[TopicPartition, int] = field(default_factory=dict)
    started_at: float | None = None

    def __len__(self) -> int:
        """Records consumed into the batch, skipped ones included."""
        return sum(len(entries) for entries in self.entries.values())

    def add(self, tp: TopicPartition, offset: int, value: T | None, *, now: float) -> None:
        """Add a record read at ``offset``; ``value`` ``None`` skips it but moves the offset."""
        if self.started_at is None:
            self.started_at = now
        self.entries.setdefault(tp, []).append(Entry(offset, value))
        self.next_offsets[tp] = offset + 1

    def values(self) -> Iterator[T]:
        """Every value not skipped, partition by partition."""
        for entries in self.entries.values():
            for entry in entries:
                if entry.value is not None:
                    yield entry.value

    def drop(self, partitions: Iterable[TopicPartition]) -> None:
        """Forget the partitions: their records are read again by whoever owns them next."""
        for tp in partitions:
            self.entries.pop(tp, None)
            self.next_offsets.pop(tp, None)

    def cut(self, tp: TopicPartition, offset: int) -> None:
        """Keep only the records before ``offset`` in ``tp``; reading resumes at ``offset``."""
        entries = self.entries.get(tp)
        if not entries:
            return
        kept = [e for e in entries if e.offset < offset]
        if kept:
            self.entries[tp] = kept
            self.next_offsets[tp] = offset
        else:
            self.drop([tp])

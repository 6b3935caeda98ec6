"""Which source records the worker has read, finished and may commit, per partition.

The worker commits its source offsets itself instead of through faust's acks, because
faust-streaming 0.15 loses records in two ways a crash then makes permanent:

- ``Consumer._new_offset`` commits the first consecutive run of acked offsets even when it
  starts past an unacked one (always with no committed offset yet, and one offset past it
  otherwise), so an out-of-order ack commits over a record still in flight;
- after a rebalance or restart the stream can miss records fetched around the assignment:
  its next record is then past the committed offset, and faust takes the skipped offsets
  for a gap of transaction markers and commits over them; or, when the missed record was
  the partition's last, nothing more arrives and it waits until the next one does.

:class:`SourcePositions` admits a partition's records strictly in offset order from its
committed position. A record past the next expected offset is a hole: the worker seeks back
and reads it again (the OPD topics are written without transactions and never compacted,
so a real hole only appears when retention deleted records first, which the worker checks).
A record before it was read already. A partition whose log holds more than the worker
admitted, and that admitted nothing for a while, is read again from there too. The committed
position is the offset of the first record not yet done, so it never passes a record whose
output is not delivered.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

__all__ = ["Admission", "Done", "SourcePositions", "TP"]

TP = tuple[str, int]
"""A source partition: ``(topic, partition)``."""

Done = Callable[[], None]
"""Marks an admitted record as finished (its output delivered, its id durable)."""

_SEEK_PATIENCE_S = 5.0
"""After a seek back, records past the hole are ignored this long before seeking again."""

_MAX_SEEKS = 3
"""Seeks back to one offset before its hole is taken as real (markers the topic should not
have): the records after it are admitted rather than reading the partition for ever."""


class Admission(enum.Enum):
    PROCESS = "process"
    """The next record of its partition: process it and call the returned ``done``."""
    SKIP = "skip"
    """Read before (a repeat after a seek) or past a hole already being read again."""
    SEEK = "seek"
    """Past a hole: seek the partition back to :meth:`SourcePositions.expected`."""


@dataclass(slots=True)
class _Slot:
    offset: int
    done: bool = False


@dataclass(slots=True)
class _Partition:
    expected: int
    committable: int
    committed: int
    slots: deque[_Slot] = field(default_factory=deque)
    seek_to: int | None = None
    seek_at: float = 0.0
    seeks: int = 0
    moved_at: float = 0.0

    def release(self) -> None:
        while self.slots and self.slots[0].done:
            self.committable = self.slots.popleft().offset + 1


class SourcePositions:
    """Admits records in offset order and says how far each partition may be committed."""

    def __init__(self) -> None:
        self._parts: dict[TP, _Partition] = {}

    def known(self, tp: TP) -> bool:
        """Whether ``tp``'s position is known (it is after :meth:`start`)."""
        return tp in self._parts

    def start(self, tp: TP, position: int, now: float = 0.0) -> None:
        """``tp`` was assigned: its next record is at ``position`` (the committed offset, or
        the log start when nothing was committed)."""
        self._parts[tp] = _Partition(
            expected=position, committable=position, committed=position, moved_at=now
        )

    def stalled(self, now: float, after: float) -> list[TP]:
        """Partitions that admitted nothing for ``after`` seconds (each is reported once per
        ``after``): if their log holds more, the stream lost their next record."""
        out = []
        for tp, part in self._parts.items():
            if now - part.moved_at >= after:
                part.moved_at = now
                out.append(tp)
        return out

    def expected(self, tp: TP) -> int:
        """The offset of the next record ``tp`` should deliver."""
        return self._parts[tp].expected

    def admit(self, tp: TP, offset: int, now: float) -> tuple[Admission, Done | None]:
        """What to do with the record at ``offset`` of ``tp`` (started), read at ``now``."""
        part = self._parts[tp]
        if offset < part.expected:
            return Admission.SKIP, None
        if offset > part.expected:
            if part.seek_to == part.expected and now - part.seek_at < _SEEK_PATIENCE_S:
                return Admission.SKIP, None
            if part.seek_to == part.expected and part.seeks >= _MAX_SEEKS:
                self.skip_to(tp, offset)
            else:
                if part.seek_to != part.expected:
                    part.seeks = 0
                part.seek_to, part.seek_at = part.expected, now
                part.seeks += 1
                return Admission.SEEK, None
        part.seek_to = None
        slot = _Slot(offset)
        part.slots.append(slot)
        part.expected = offset + 1
        part.moved_at = now

        def done() -> None:
            slot.done = True
            part.release()

        return Admission.PROCESS, done

    def skip_to(self, tp: TP, offset: int) -> None:
        """Accept that ``tp`` has no records before ``offset`` (retention deleted them)."""
        part = self._parts[tp]
        part.slots.append(_Slot(offset - 1, done=True))
        part.expected = offset
        part.seek_to = None
        part.release()

    def committable(self) -> dict[TP, int]:
        """Each partition whose commit position moved since :meth:`committed`, with it."""
        return {
            tp: part.committable
            for tp, part in self._parts.items()
            if part.committable > part.committed
        }

    def committed(self, offsets: dict[TP, int]) -> None:
        """Record that ``offsets`` were committed."""
        for tp, offset in offsets.items():
            part = self._parts.get(tp)
            if part is not None:
                part.committed = offset

    def pending(self) -> int:
        """Records admitted and not yet done, over every partition."""
        return sum(sum(not s.done for s in p.slots) for p in self._parts.values())

    def drop(self, tps: Iterable[TP]) -> None:
        """Forget revoked partitions; a later ``done`` of one of their records is harmless,
        and the next assignment starts again from the committed offset."""
        for tp in tps:
            self._parts.pop(tp, None)

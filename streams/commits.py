"""The worker's source offsets: admitted in order, committed by the worker itself.

:class:`SourceCommitter` puts :class:`~lintas.streams.positions.SourcePositions` between
faust's stream and the pipeline (see that module for why faust's own acks are not used):
it looks up where a newly assigned partition starts, seeks back over holes and stalls, commits the
finished positions on a timer, and commits what it can before partitions are revoked or the
worker stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiokafka import TopicPartition

from .positions import TP, Admission, Done, SourcePositions
from .processor import SourceRecord

__all__ = ["SourceCommitter"]

log = logging.getLogger(__name__)

_STALL_S = 5.0
"""A partition that admitted nothing this long while its log holds more is read again."""

_FINISH_TIMEOUT_S = 10.0
"""How long a rebalance or shutdown waits for records in flight before committing."""


class SourceCommitter:
    """Admits source records in order and commits the positions of finished ones.

    Args:
        group_id: the workers' consumer group.
        consumer: faust's consumer (``app.consumer``): seeks, commits, earliest offsets.
        admin: returns the admin client that reads the group's committed offsets.
        drain: waits until every record in flight is done (the pipeline's).
    """

    def __init__(
        self,
        group_id: str,
        consumer: Callable[[], Any],
        admin: Callable[[], Awaitable[Any]],
        drain: Callable[[], Awaitable[None]],
    ) -> None:
        self._group_id = group_id
        self._consumer = consumer
        self._admin = admin
        self._drain = drain
        self.positions = SourcePositions()
        self._lock = asyncio.Lock()

    async def admit(self, record: SourceRecord) -> Done | None:
        """The ``done`` callback when ``record`` is the next one of its partition; None when it
        is to be ignored (read before, or past a hole the worker now reads again)."""
        tp: TP = (record.topic, record.partition)
        if not self.positions.known(tp):
            # Revoked partitions are forgotten, so only a first record needs this check.
            if TopicPartition(*tp) not in self._consumer().assignment():
                return None  # left over from before a rebalance: its new owner reads it
            self.positions.start(tp, await self._start_position(tp), time.monotonic())
        while True:
            admission, done = self.positions.admit(tp, record.offset, time.monotonic())
            # After retention moved the partition's start, the record is admitted again.
            if admission is not Admission.SEEK or not await self._seek_back(tp, record.offset):
                return done

    async def check_stalled(self) -> None:
        """Read again the partitions whose next record the stream never delivered."""
        consumer = self._consumer()
        for tp in self.positions.stalled(time.monotonic(), _STALL_S):
            partition = TopicPartition(*tp)
            if partition not in consumer.assignment():
                continue
            expected = self.positions.expected(tp)
            highwater = consumer.highwater(partition)
            if highwater is not None and highwater > expected:
                log.info(
                    "%s[%d]: record %d never arrived (log ends at %d); reading from it again",
                    *tp,
                    expected,
                    highwater,
                )
                await consumer.seek(partition, expected)

    async def commit(self) -> None:
        """Commit every partition whose finished position moved."""
        async with self._lock:
            offsets = self.positions.committable()
            if not offsets:
                return
            consumer = self._consumer()
            assigned = consumer.assignment()
            tps = {TopicPartition(*tp): o for tp, o in offsets.items()}
            tps = {tp: o for tp, o in tps.items() if tp in assigned}
            if not tps:
                return
            # faust's transport commit: aiokafka's, run in faust's consumer thread; it
            # skips partitions no longer assigned and returns False when the group refused.
            if await consumer._commit(tps):
                self.positions.committed({(tp.topic, tp.partition): o for tp, o in tps.items()})

    async def finish(self, tps: Iterable[TP] | None) -> None:
        """Before partitions go (``tps``; all of them: None): wait a while for records in
        flight, commit what finished, and forget the partitions."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drain(), _FINISH_TIMEOUT_S)
        try:
            await self.commit()
        except Exception as exc:  # the next owner reads them again: at least once holds
            log.warning("could not commit before the partitions went: %r", exc)
        if tps is not None:
            self.positions.drop(tps)

    async def _start_position(self, tp: TP) -> int:
        admin = await self._admin()
        partition = TopicPartition(*tp)
        offsets = await admin.list_consumer_group_offsets(self._group_id, partitions=[partition])
        meta = offsets.get(partition)
        if meta is not None and meta.offset >= 0:
            return int(meta.offset)
        return await self._earliest(partition)

    async def _earliest(self, partition: TopicPartition) -> int:
        return int((await self._consumer().earliest_offsets(partition))[partition])

    async def _seek_back(self, tp: TP, seen: int) -> bool:
        """Seek ``tp`` back to its expected offset; True instead when retention deleted the
        records there (the positions move past them, and the record is admitted again)."""
        expected = self.positions.expected(tp)
        partition = TopicPartition(*tp)
        earliest = await self._earliest(partition)
        if earliest > expected:
            log.warning(
                "%s[%d]: records %d to %d were deleted by retention before they were processed",
                *tp,
                expected,
                earliest - 1,
            )
            self.positions.skip_to(tp, earliest)
            return True
        log.info("%s[%d]: read %d before %d; reading from %d again", *tp, seen, expected, expected)
        await self._consumer().seek(partition, expected)
        return False

"""The records of one direct call while they are on their way (see :mod:`._pipeline`)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from ._kafka import KafkaLink, Part, classify
from ._record import Record
from .exceptions import ProducerError

__all__ = ["Flight"]


class Flight:
    """The records of one direct call, on their way through one aiokafka producer."""

    __slots__ = (
        "_pending",
        "id",
        "link",
        "parts",
        "records",
        "settled",
        "spool_error",
        "spooled",
        "taken",
    )

    def __init__(self, flight_id: int, records: Sequence[Record], link: KafkaLink) -> None:
        loop = asyncio.get_running_loop()
        self.id = flight_id
        self.records = records
        self.link = link
        self.parts: list[Part] = []
        # settled: every part is done, or one failed in a way that needs the spool.
        self.settled: asyncio.Future[None] = loop.create_future()
        # taken: a failover spooled what was not acknowledged (see Pipeline._failover).
        self.taken: asyncio.Future[None] = loop.create_future()
        self.spooled: frozenset[int] = frozenset()
        self.spool_error: ProducerError | None = None
        self._pending = 0

    def watch(self) -> None:
        """Follow the parts' futures (call once, after every record was handed over)."""
        self._pending = len(self.parts)
        if not self._pending:
            self._settle()
        for part in self.parts:
            part.future.add_done_callback(self._part_done)

    def _part_done(self, future: asyncio.Future[Any]) -> None:
        self._pending -= 1
        error = None if future.cancelled() else future.exception()
        failed = future.cancelled() or (error is not None and classify(error) == "retry")
        if failed or self._pending == 0:
            self._settle()

    def _settle(self) -> None:
        if not self.settled.done():
            self.settled.set_result(None)

    def needs_spool(self) -> bool:
        """Whether some record is neither acknowledged nor finally refused."""
        return bool(self.unacknowledged())

    def unacknowledged(self) -> list[int]:
        """Positions of records that may not be in Kafka and may still get there."""
        final = set()
        for part in self.parts:
            future = part.future
            if not future.done() or future.cancelled():
                continue
            exc = future.exception()
            if exc is None or classify(exc) != "retry":
                final.update(part.indexes)
        return [i for i in range(len(self.records)) if i not in final]

"""What :class:`~lintas.producers.EventProducer` hands its encoded records to.

The real one is :class:`~._pipeline.Pipeline` (Kafka, and the spool when it must);
:mod:`lintas.producers.testing` has one that keeps records in memory. Everything before it
(validation, Avro encoding, the envelope, metrics of the call) is the producer's own, so a
fake transport cannot change what an event looks like.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from ._record import Record
from .types import Delivery

__all__ = ["Transport"]


class Transport(Protocol):
    """Hands encoded records over in order; see :class:`~._pipeline.Pipeline`."""

    @property
    def spooling(self) -> bool:
        """Whether new records go to the spool now."""
        ...

    @property
    def in_flight(self) -> int:
        """Records handed over and not yet acknowledged."""
        ...

    @property
    def spooled(self) -> int:
        """Records waiting in the spool."""
        ...

    @property
    def spool_path(self) -> Path:
        """Where the spool is."""
        ...

    async def submit(self, records: Sequence[Record]) -> list[Delivery]:
        """Hand records over; their deliveries in the same order."""
        ...

    async def flush(self, timeout: float) -> None:
        """Wait until everything is acknowledged; ``FlushTimeout`` after ``timeout``."""
        ...

    async def stop(self) -> None:
        """Flush within the stop timeout, keep the rest, close."""
        ...

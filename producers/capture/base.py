"""What every capture mechanism shares: its lifecycle and its counters."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import datetime as dt
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from lintas.settings import CaptureSettings

from .config import SourceConfig
from .publisher import Outcome, Publisher
from .state import CaptureState
from .types import Change, Mechanism

__all__ = ["CaptureSource", "SourceStats"]


@dataclass
class SourceStats:
    """Counters of one source since the process started (``lintas capture status``)."""

    changes: int = 0
    events: int = 0
    spooled: int = 0
    dead: int = 0
    ignored: int = 0
    skipped: int = 0
    """Stream changes a snapshot chunk already carried."""
    batches: int = 0
    position: str | None = None
    last_commit_time: dt.datetime | None = None
    commit_lags_s: deque[float] = field(default_factory=lambda: deque(maxlen=100_000), repr=False)
    """Seconds from the source's commit to Kafka's acknowledgement, per change with a
    commit time (the benchmark reads and clears it)."""

    def add(self, outcome: Outcome, changes: int) -> None:
        self.changes += changes
        self.events += outcome.events
        self.spooled += outcome.spooled
        self.dead += outcome.dead
        self.ignored += outcome.ignored
        self.batches += 1


class CaptureSource(abc.ABC):
    """One mechanism reading one source database.

    The runner calls :meth:`prepare` (connect, check the database's settings and the
    mapping's columns: a problem that needs a person raises at once), then :meth:`run`
    until ``stop`` is set, and :meth:`close` in any case. After a retriable error it builds
    a new instance, which resumes from the committed positions.

    Args:
        config: the checked source file.
        state: the source's durable positions.
        publisher: maps and sends changes.
        settings: the capture settings.
    """

    mechanism: Mechanism

    def __init__(
        self,
        config: SourceConfig,
        *,
        state: CaptureState,
        publisher: Publisher,
        settings: CaptureSettings,
        stats: SourceStats | None = None,
    ) -> None:
        self.config = config
        self.state = state
        self.publisher = publisher
        self.settings = settings
        self.stats = stats if stats is not None else SourceStats()
        self.application_name = f"lintas-capture-{config.name}"[:63]

    @abc.abstractmethod
    async def prepare(self) -> None:
        """Connect and check; raises ``SourceMisconfigured``, ``MappingInvalid``,
        ``PositionLost`` or ``SourceUnavailable``."""

    @abc.abstractmethod
    async def run(self, stop: asyncio.Event) -> None:
        """Capture until ``stop`` is set."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections and threads; never raises."""

    async def send(self, changes: Sequence[Change]) -> Outcome:
        """Publish ``changes`` (acknowledged or spooled when it returns) and count them."""
        outcome = await self.publisher.publish(changes)
        self.stats.add(outcome, len(changes))
        now = time.time()
        for change in changes:
            if change.committed_at is not None:
                self.stats.commit_lags_s.append(now - change.committed_at.timestamp())
        return outcome

    @staticmethod
    async def pause(stop: asyncio.Event, seconds: float) -> bool:
        """Wait ``seconds`` or until ``stop``; True when stopped."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
        return stop.is_set()

"""The simulated OPD applications at work: a realistic, continuous flow of events.

Every application runs its own loop. Each tick (half a second) it draws how many events
happened, from its rate at that moment of the simulated clock (its share of the preset's
peak, times how busy its :class:`~lintas.demo.traffic.Profile` is then, never below the
preset's floor), makes them about the Pemda's simulated citizens, spoils the scheduled
share of bad ones, and publishes them through its channel: the Python SDK, or the HTTP
gateway from Node.js. Counts per application are kept for the progress display.

Usage::

    simulator = Simulator(apps, publishers, factory, preset=RATE_PRESETS["normal"], clock=clock)
    await simulator.run(stop)          # until ``stop`` is set
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .apps import SimApp
from .faults import BAD_SHARE, BadSchedule, spoil
from .generators import EventFactory
from .publishers import Publisher
from .traffic import RatePreset, SimClock, activity
from .types import Outcome, OutcomeStatus, SimEvent

__all__ = ["AppStats", "Simulator", "poisson"]

TICK_S = 0.5


@dataclass(slots=True)
class AppStats:
    """What one simulated application did so far."""

    sent: int = 0
    spooled: int = 0
    refused: int = 0
    failed: int = 0
    bad: int = 0
    """Deliberately bad events taken by the platform (they should reach the DLQ)."""
    rate: float = 0.0
    """Events per second it publishes at the current simulated moment."""
    idle: str = ""
    """Why it publishes nothing (its channel is not available), else empty."""
    last_error: str = ""

    @property
    def taken(self) -> int:
        return self.sent + self.spooled

    def count(self, outcomes: Sequence[Outcome], bad_ids: set[str]) -> None:
        """Add the outcomes of one publish; ``bad_ids`` are the deliberately bad events."""
        for outcome in outcomes:
            if outcome.status is OutcomeStatus.SENT:
                self.sent += 1
            elif outcome.status is OutcomeStatus.SPOOLED:
                self.spooled += 1
            elif outcome.status is OutcomeStatus.REFUSED:
                self.refused += 1
                self.last_error = outcome.detail
            else:
                self.failed += 1
                self.last_error = outcome.detail
            if outcome.event_id in bad_ids and outcome.status in (
                OutcomeStatus.SENT,
                OutcomeStatus.SPOOLED,
            ):
                self.bad += 1


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson-distributed count (how many events happen in a tick)."""
    if mean <= 0:
        return 0
    if mean > 30:  # the normal approximation is close enough there, and O(1)
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


class Simulator:
    """Runs the simulated applications.

    Args:
        apps: the applications.
        publishers: application id -> its publisher; an application without one stays
            idle, with the reason from ``idle``.
        factory: makes the events.
        preset: the rate preset (peak, clock speed, floor).
        clock: the simulated clock the traffic follows.
        idle: application id -> why it cannot publish.
        bad_share: the share of deliberately bad events.
        scale: multiplies the rate (``LINTAS_TEST_SCALE``).
    """

    def __init__(
        self,
        apps: Sequence[SimApp],
        publishers: Mapping[str, Publisher],
        factory: EventFactory,
        *,
        preset: RatePreset,
        clock: SimClock,
        idle: Mapping[str, str] | None = None,
        bad_share: float = BAD_SHARE,
        scale: float = 1.0,
    ) -> None:
        self.apps = tuple(apps)
        self._publishers = publishers
        self._factory = factory
        self._rng = factory.rng
        self.preset = preset
        self.clock = clock
        self._schedule = BadSchedule(bad_share)
        self._peak = preset.peak_per_s * scale
        self._total_share = sum(a.share for a in self.apps) or 1.0
        self.stats = {a.app_id: AppStats(idle=(idle or {}).get(a.app_id, "")) for a in self.apps}

    def rate_of(self, app: SimApp) -> float:
        """``app``'s events per second at the simulated clock's current moment."""
        busy = max(activity(app.profile, self.clock.now()), self.preset.floor)
        return self._peak * app.share / self._total_share * busy

    def make_event(self, app: SimApp) -> SimEvent:
        """The next event of ``app``: a type from its mix, spoilt when its turn has come."""
        types, weights = zip(*app.mix, strict=True)
        event_type = self._rng.choices(types, weights=weights)[0]
        record = self._factory.make(event_type)
        bad = None
        if self._schedule.next():
            bad = self._schedule.kind_for(event_type, record)
            record = spoil(event_type, record, bad, self._rng, now=self._factory.clock())
        return SimEvent(event_type=event_type, record=record, id=str(uuid.uuid4()), bad=bad)

    async def run(self, stop: asyncio.Event) -> None:
        """Run every application until ``stop`` is set; returns once each loop has ended
        (an event already handed to a publisher gets its answer first)."""
        loops = [
            asyncio.create_task(self._run_app(app, stop), name=f"demo-app-{app.app_id}")
            for app in self.apps
            if app.app_id in self._publishers
        ]
        try:
            await asyncio.gather(*loops)
        finally:
            for task in loops:
                task.cancel()

    async def _run_app(self, app: SimApp, stop: asyncio.Event) -> None:
        publisher = self._publishers[app.app_id]
        stats = self.stats[app.app_id]
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            started = loop.time()
            stats.rate = self.rate_of(app)
            count = poisson(self._rng, stats.rate * TICK_S)
            if count:
                events = [self.make_event(app) for _ in range(count)]
                bad_ids = {e.id for e in events if e.bad is not None}
                try:
                    outcomes = await publisher.publish(app, events)
                except Exception as exc:  # one app's trouble must not stop the others
                    outcomes = [Outcome(e.id, OutcomeStatus.FAILED, str(exc)) for e in events]
                stats.count(outcomes, bad_ids)
            # A slow publish shortens the wait: the tick keeps its length on average.
            remaining = TICK_S - (loop.time() - started)
            if remaining > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), remaining)

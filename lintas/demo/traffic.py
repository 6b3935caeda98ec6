"""How busy each simulated application is at a given moment: office hours and the calendar.

A Pemda's traffic follows its offices. Counter services (Dukcapil's registry, DPMPTSP's
permits, Dinsos's disbursements) publish during *jam kerja* on working days and next to
nothing at night, on weekends, national holidays (*libur nasional*) and *cuti bersama*;
citizen-facing online channels (tax payments by QRIS, complaints, a hospital's emergency
ward) run around the clock with a daytime peak. The working-day calendar is
``lokal-id``'s (the SKB 3 Menteri of each year).

The demo runs a *simulated clock* that can run faster than the real one (``speed``), so a
short demo shows the morning rush, the lunch break and the evening; and each rate preset
has a *floor*, the share of its peak an application never drops below, so that the
dashboard shows traffic at any hour. ``real`` has neither: it is what a Kota's platform
actually sees.

Usage::

    shape = activity(Profile.OFFICE, dt.datetime(2026, 8, 17, 10, tzinfo=WIB))  # 0.01: a holiday
    clock = SimClock(start=now, speed=60.0)      # one simulated hour per real minute
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

import lokal

__all__ = [
    "RATE_PRESETS",
    "WIB",
    "DayKind",
    "Profile",
    "RatePreset",
    "SimClock",
    "activity",
    "day_kind",
    "holiday_names",
    "parse_rate",
]

WIB = dt.timezone(dt.timedelta(hours=7), "WIB")

# Jam kerja of the Pemda's offices (Kota Bandung, five working days): 07:30-16:00, on Friday
# until 16:30 with a longer break for Friday prayers. Counters slow down over lunch.
_OPEN = dt.time(7, 30)
_CLOSE = dt.time(16, 0)
_CLOSE_FRIDAY = dt.time(16, 30)
_BREAK = (dt.time(12, 0), dt.time(13, 0))
_BREAK_FRIDAY = (dt.time(11, 30), dt.time(13, 0))
_FRIDAY = 4  # datetime.weekday()

# Office activity outside opening hours: officers finishing the day's entries, batch jobs.
_OFFICE_AFTER_HOURS = 0.03
_OFFICE_DAY_OFF = 0.01
_OFFICE_LUNCH = 0.5

# Online channels by hour of day (0-23), as a share of their peak: quiet before dawn, the
# morning and the evening after work are the busiest.
_ONLINE_BY_HOUR = (
    0.10, 0.06, 0.04, 0.04, 0.06, 0.15, 0.35, 0.60, 0.85, 1.00, 1.00, 0.95,
    0.80, 0.85, 0.90, 0.85, 0.75, 0.70, 0.75, 0.90, 0.85, 0.60, 0.35, 0.20,
)  # fmt: skip
_ONLINE_DAY_OFF = 0.7


class Profile(enum.StrEnum):
    """When an application is busy."""

    OFFICE = "office"
    """A counter service: working days, jam kerja."""
    ONLINE = "online"
    """A citizen-facing online channel: every day, all day, with a daytime peak."""


class DayKind(enum.StrEnum):
    WORKING_DAY = "working_day"
    WEEKEND = "weekend"
    HOLIDAY = "holiday"
    """A libur nasional or a cuti bersama on a weekday."""
    UNKNOWN_YEAR = "unknown_year"
    """A weekday of a year lokal-id has no calendar for: treated as a working day."""


@functools.lru_cache(maxsize=512)
def day_kind(day: dt.date) -> DayKind:
    """Whether ``day`` is a working day for a Pemda office (cuti bersama is a day off)."""
    if day.weekday() >= 5:
        return DayKind.WEEKEND
    try:
        working = lokal.is_working_day(day)
    except ValueError:
        # lokal-id carries the years whose SKB 3 Menteri has been published; beyond them
        # only weekends are known.
        return DayKind.UNKNOWN_YEAR
    return DayKind.WORKING_DAY if working else DayKind.HOLIDAY


@functools.lru_cache(maxsize=64)
def holiday_names(day: dt.date) -> tuple[str, ...]:
    """The national holidays and cuti bersama on ``day`` (empty when none or unknown)."""
    try:
        return tuple(h.name for h in lokal.holidays_on(day))
    except ValueError:
        return ()


def _office(at: dt.datetime) -> float:
    if day_kind(at.date()) not in (DayKind.WORKING_DAY, DayKind.UNKNOWN_YEAR):
        return _OFFICE_DAY_OFF
    friday = at.weekday() == _FRIDAY
    now = at.time()
    if not _OPEN <= now < (_CLOSE_FRIDAY if friday else _CLOSE):
        return _OFFICE_AFTER_HOURS
    start, end = _BREAK_FRIDAY if friday else _BREAK
    return _OFFICE_LUNCH if start <= now < end else 1.0


def _online(at: dt.datetime) -> float:
    share = _ONLINE_BY_HOUR[at.hour]
    if day_kind(at.date()) in (DayKind.WEEKEND, DayKind.HOLIDAY):
        share *= _ONLINE_DAY_OFF
    return share


def activity(profile: Profile, at: dt.datetime) -> float:
    """How busy an application of ``profile`` is at ``at``, as a share of its peak (0-1].

    Args:
        profile: office or online.
        at: a tz-aware instant; it is read in the Pemda's zone (WIB unless converted).
    """
    return _office(at) if profile is Profile.OFFICE else _online(at)


@dataclass(frozen=True, slots=True, kw_only=True)
class RatePreset:
    """How much the demo publishes, and how fast its simulated clock runs.

    Attributes:
        name: as given to ``--rate``.
        peak_per_s: events per second of all applications together at their peak.
        speed: simulated seconds per real second (time compression).
        floor: the share of its peak no application drops below (0: none).
    """

    name: str
    peak_per_s: float
    speed: float
    floor: float

    def describe(self) -> str:
        floor = f", never below {self.floor:.0%} of peak" if self.floor else ""
        return f"{self.name}: peak {self.peak_per_s:g} events/s, clock x{self.speed:g}{floor}"


RATE_PRESETS: dict[str, RatePreset] = {
    # What a Kota actually sees: a few events a second at the morning peak, quiet at night.
    "real": RatePreset(name="real", peak_per_s=1.0, speed=1.0, floor=0.0),
    # One simulated hour per real minute: the office-hours wave is visible within minutes,
    # and at night the floor keeps the dashboard moving.
    "normal": RatePreset(name="normal", peak_per_s=5.0, speed=60.0, floor=0.2),
    # For tests and big screens: busy at any hour.
    "high": RatePreset(name="high", peak_per_s=25.0, speed=60.0, floor=0.5),
}


def parse_rate(value: str, *, speed: float | None = None) -> RatePreset:
    """A preset by name, or a number: peak events per second with the ``normal`` clock.

    Args:
        value: ``real``, ``normal``, ``high``, or a positive number such as ``12``.
        speed: overrides the preset's time compression.

    Raises:
        ValueError: neither a preset nor a positive number (the message names both).
    """
    preset = RATE_PRESETS.get(value.strip().lower())
    if preset is None:
        try:
            peak = float(value)
        except ValueError:
            peak = 0.0
        if not 0 < peak <= 10_000:
            names = ", ".join(RATE_PRESETS)
            raise ValueError(f"must be one of {names} or events per second (got {value!r})")
        base = RATE_PRESETS["normal"]
        preset = RatePreset(name=value, peak_per_s=peak, speed=base.speed, floor=base.floor)
    if speed is not None:
        if not 0 < speed <= 100_000:
            raise ValueError(f"the clock speed must be above 0 (got {speed:g})")
        preset = RatePreset(
            name=preset.name, peak_per_s=preset.peak_per_s, speed=speed, floor=preset.floor
        )
    return preset


class SimClock:
    """The demo's simulated clock: starts at ``start`` and runs ``speed`` times real time.

    Only the traffic shape reads it; events carry real timestamps (a platform refuses
    events from the future).

    Args:
        start: the simulated instant at creation (tz-aware).
        speed: simulated seconds per real second.
        monotonic: the real clock (tests give their own).
    """

    def __init__(
        self,
        *,
        start: dt.datetime,
        speed: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be tz-aware")
        self.start = start
        self.speed = speed
        self._monotonic = monotonic
        self._origin = monotonic()

    def now(self) -> dt.datetime:
        """The simulated instant, in ``start``'s zone."""
        elapsed = (self._monotonic() - self._origin) * self.speed
        return self.start + dt.timedelta(seconds=elapsed)

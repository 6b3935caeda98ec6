"""Office hours and the holiday calendar shape the demo's traffic; the clock compresses time."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from lintas.demo import DEMO_APPS, EventFactory, Population, Profile, SimClock, Simulator
from lintas.demo.simulator import poisson
from lintas.demo.traffic import (
    RATE_PRESETS,
    WIB,
    DayKind,
    activity,
    day_kind,
    holiday_names,
    parse_rate,
)


def wib(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=WIB)


def test_days_come_from_lokals_calendar() -> None:
    assert day_kind(dt.date(2026, 11, 23)) is DayKind.WORKING_DAY  # a Monday
    assert day_kind(dt.date(2026, 11, 22)) is DayKind.WEEKEND
    assert day_kind(dt.date(2026, 8, 17)) is DayKind.HOLIDAY  # Hari Kemerdekaan, a Monday
    assert day_kind(dt.date(2026, 3, 20)) is DayKind.HOLIDAY  # cuti bersama Idulfitri
    assert day_kind(dt.date(2031, 6, 4)) is DayKind.UNKNOWN_YEAR  # no SKB for 2031 yet
    assert any("Kemerdekaan" in name for name in holiday_names(dt.date(2026, 8, 17)))


def test_offices_are_busy_in_office_hours_only() -> None:
    monday = (2026, 11, 23)
    assert activity(Profile.OFFICE, wib(*monday, 10, 0)) == 1.0
    assert activity(Profile.OFFICE, wib(*monday, 12, 30)) == 0.5  # lunch
    assert activity(Profile.OFFICE, wib(*monday, 7, 0)) < 0.1
    assert activity(Profile.OFFICE, wib(*monday, 16, 15)) < 0.1
    assert activity(Profile.OFFICE, wib(*monday, 22, 0)) < 0.1
    # Friday: open until 16:30, prayers break from 11:30.
    assert activity(Profile.OFFICE, wib(2026, 11, 27, 16, 15)) == 1.0
    assert activity(Profile.OFFICE, wib(2026, 11, 27, 11, 45)) == 0.5


def test_holidays_and_weekends_close_the_offices() -> None:
    working = activity(Profile.OFFICE, wib(2026, 8, 24, 10, 0))
    assert activity(Profile.OFFICE, wib(2026, 8, 17, 10, 0)) < working / 10
    assert activity(Profile.OFFICE, wib(2026, 3, 20, 10, 0)) < working / 10  # cuti bersama
    assert activity(Profile.OFFICE, wib(2026, 11, 22, 10, 0)) < working / 10  # Sunday
    # A year without a calendar keeps office hours on weekdays.
    assert activity(Profile.OFFICE, wib(2031, 6, 4, 10, 0)) == 1.0


def test_online_channels_never_close_but_follow_the_day() -> None:
    night = activity(Profile.ONLINE, wib(2026, 11, 23, 3, 0))
    morning = activity(Profile.ONLINE, wib(2026, 11, 23, 10, 0))
    holiday = activity(Profile.ONLINE, wib(2026, 8, 17, 10, 0))
    assert 0 < night < morning / 5
    assert morning * 0.5 < holiday < morning
    assert activity(Profile.ONLINE, wib(2026, 8, 17, 3, 0)) > 0


def test_the_clock_runs_at_its_speed() -> None:
    real = [1000.0]
    clock = SimClock(start=wib(2026, 11, 23, 7, 0), speed=60.0, monotonic=lambda: real[0])
    assert clock.now() == wib(2026, 11, 23, 7, 0)
    real[0] += 30  # half a real minute: half a simulated hour
    assert clock.now() == wib(2026, 11, 23, 7, 30)
    with pytest.raises(ValueError, match="tz-aware"):
        SimClock(start=dt.datetime(2026, 1, 1), speed=1)


def test_rates_by_name_or_number() -> None:
    assert parse_rate("high") is RATE_PRESETS["high"]
    assert parse_rate("REAL").speed == 1
    custom = parse_rate("12")
    assert (custom.peak_per_s, custom.speed) == (12.0, RATE_PRESETS["normal"].speed)
    assert parse_rate("normal", speed=600).speed == 600
    for bad in ("fast", "0", "-3"):
        with pytest.raises(ValueError, match="real, normal, high"):
            parse_rate(bad)
    with pytest.raises(ValueError, match="speed"):
        parse_rate("normal", speed=0)


def _simulator(rate: str, at: dt.datetime) -> Simulator:
    rng = random.Random(1)
    factory = EventFactory(Population(rng, today=at.date()), rng)
    clock = SimClock(start=at, speed=1, monotonic=lambda: 0.0)
    return Simulator(DEMO_APPS, {}, factory, preset=parse_rate(rate), clock=clock)


def test_an_apps_rate_follows_its_profile_above_the_presets_floor() -> None:
    siak = next(a for a in DEMO_APPS if a.app_id == "siak-bandung")
    total_share = sum(a.share for a in DEMO_APPS)
    peak = RATE_PRESETS["normal"].peak_per_s * siak.share / total_share
    working = _simulator("normal", wib(2026, 11, 23, 10, 0))
    assert working.rate_of(siak) == pytest.approx(peak)
    night = _simulator("normal", wib(2026, 11, 23, 23, 0))
    assert night.rate_of(siak) == pytest.approx(peak * RATE_PRESETS["normal"].floor)
    # The real preset has no floor: a holiday is as quiet as a holiday is.
    holiday = _simulator("real", wib(2026, 8, 17, 10, 0))
    real_peak = RATE_PRESETS["real"].peak_per_s * siak.share / total_share
    assert holiday.rate_of(siak) == pytest.approx(real_peak * 0.01)
    # All applications together reach the preset's peak at the busiest moment.
    assert sum(working.rate_of(a) for a in DEMO_APPS) <= RATE_PRESETS["normal"].peak_per_s


def test_poisson_counts_have_the_asked_mean() -> None:
    rng = random.Random(2)
    for mean in (0.2, 3.0, 50.0):
        draws = [poisson(rng, mean) for _ in range(4000)]
        assert sum(draws) / len(draws) == pytest.approx(mean, rel=0.1)
    assert poisson(rng, 0) == 0

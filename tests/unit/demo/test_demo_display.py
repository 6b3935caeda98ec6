"""The progress panel and the summary: what a run shows, before and while it runs."""

from __future__ import annotations

import datetime as dt
import random

from rich.console import Console

from lintas.demo import (
    DEMO_APPS,
    DemoOptions,
    DemoRun,
    EventFactory,
    Platform,
    Population,
    SimClock,
    Simulator,
    parse_rate,
)
from lintas.demo.display import clock_line, progress_line, render
from lintas.demo.traffic import WIB
from lintas.kafka import KafkaConnection
from lintas.settings import Settings

PLATFORM = Platform(
    kafka=KafkaConnection(bootstrap="127.0.0.1:1", username="u", password="p"),
    pg_dsn="postgresql://u@127.0.0.1:1/db",
    registry_url=None,
    gateway_url=None,
    portal_url="http://127.0.0.1:8000",
    missing={"gateway": "not running (`lintas logs gateway`)"},
)


def _text(run: DemoRun) -> str:
    console = Console(width=160, record=True)
    console.print(render(run))
    return console.export_text()


def test_a_run_shows_its_applications_and_why_some_are_idle() -> None:
    run = DemoRun(Settings(), PLATFORM, DemoOptions(duration_s=10, preset=parse_rate("normal")))
    assert "starting" in _text(run)
    rng = random.Random(1)
    factory = EventFactory(Population(rng, today=dt.date(2026, 8, 17)), rng)
    clock = SimClock(start=dt.datetime(2026, 8, 17, 10, tzinfo=WIB), speed=60)
    sdk_apps = {a.app_id for a in DEMO_APPS if a.channel.value == "sdk"}
    idle = {a.app_id: "gateway: not running" for a in DEMO_APPS if a.app_id not in sdk_apps}
    run.simulator = Simulator(
        DEMO_APPS, {}, factory, preset=run.options.preset, clock=clock, idle=idle
    )
    run.simulator.stats["siak-bandung"].sent = 42
    text = _text(run)
    assert "SIAK" in text and "42" in text
    assert "idle: gateway: not running" in text
    assert "Kemerdekaan" in clock_line(run)  # 17 August: a national holiday
    assert "42 events taken" in progress_line(run)
    summary = run.summary()
    assert summary["apps"]["siak-bandung"]["sent"] == 42
    assert summary["events_per_opd"]["dukcapil"] == 42
    assert summary["missing"] == {"gateway": "not running (`lintas logs gateway`)"}
    assert summary["story"] is None  # not started

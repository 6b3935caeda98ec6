"""The demo: a Pemda's OPD applications at work on the platform, and the story it exists for.

``lintas demo`` (what ``make demo`` ends in) starts the stack, imports Kota Bandung's
directory, runs simulated OPD applications (Python SDK and, from Node.js, the HTTP
gateway) with realistic, calendar-shaped traffic and a small share of bad events, and plays
the story: a death registered at Dukcapil reaching Dinsos's webhook, Bapenda's topic and
the analysts' view within seconds. See ``docs/demo.md``.

Usage::

    from lintas.demo import DemoOptions, DemoRun, Platform, parse_rate

    run = DemoRun(settings, platform, DemoOptions(duration_s=60, preset=parse_rate("high")))
    await run.run(stop)
    print(run.summary())
"""

from .apps import DEMO_APPS, Channel, SimApp
from .exceptions import DemoError, DemoSetupFailed, GatewayClientFailed, NodeUnavailable
from .faults import BadSchedule, spoil
from .generators import EVENT_TYPES, EventFactory
from .population import Citizen, Population
from .runner import DemoOptions, DemoRun, Platform
from .simulator import AppStats, Simulator
from .story import StepState, Story, StoryStep
from .traffic import RATE_PRESETS, Profile, RatePreset, SimClock, activity, parse_rate
from .types import BadKind, Outcome, OutcomeStatus, SimEvent

__all__ = [
    # running the demo
    "DemoOptions",
    "DemoRun",
    "Platform",
    # traffic
    "RATE_PRESETS",
    "Profile",
    "RatePreset",
    "SimClock",
    "activity",
    "parse_rate",
    # applications and their events
    "DEMO_APPS",
    "EVENT_TYPES",
    "AppStats",
    "BadKind",
    "BadSchedule",
    "Channel",
    "Citizen",
    "EventFactory",
    "Outcome",
    "OutcomeStatus",
    "Population",
    "SimApp",
    "SimEvent",
    "Simulator",
    "spoil",
    # the story
    "StepState",
    "Story",
    "StoryStep",
    # errors
    "DemoError",
    "DemoSetupFailed",
    "GatewayClientFailed",
    "NodeUnavailable",
]

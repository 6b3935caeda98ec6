"""One run of the demo on a running platform: set up, simulate, tell the story, stop cleanly.

The command line (``lintas demo``) starts the stack first and shows :class:`DemoRun`'s
state while it runs; this module knows nothing of terminals.

Order of things::

    receiver on 127.0.0.1    Dinsos's and Dinkes's webhook endpoints
    directory                the demo's Pemda imported (idempotent), keys checked
    publishers               one SDK producer per Python app; the Node.js gateway client
    topic tail               lintas.dlq and Bapenda's delivery topic, from their ends
    simulator + story        until the duration is over or ``stop`` is set
    stop                     simulators first, then producers flushed, the Node.js client
                             drained, webhook subscribers paused, everything closed
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lintas.directory import Directory
from lintas.kafka import KafkaConnection
from lintas.settings import Settings
from lintas.topics import DLQ_TOPIC

from .apps import DEMO_APPS, Channel, SimApp
from .bootstrap import DemoDirectory, pause_webhooks, prepare_directory, webhook_subscribers
from .exceptions import DemoError
from .faults import BAD_SHARE
from .gateway_client import NodeGatewayPublisher
from .generators import EventFactory
from .population import Population
from .publishers import Publisher, SdkPublisher
from .receiver import WebhookReceiver
from .simulator import Simulator
from .state import DemoState
from .story import Story
from .traffic import RatePreset, SimClock
from .watch import DeadLetterCounter, TopicTail

__all__ = ["DemoOptions", "DemoRun", "Platform"]

log = logging.getLogger(__name__)

BAPENDA_SUBSCRIBER = "bapenda-epad"
# The story starts once the simulated applications are under way.
_STORY_DELAY_S = 3.0
# After the simulators stop: how long to wait for the worker to dead-letter the last bad
# events, so the final count is complete.
_SETTLE_S = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Platform:
    """Where the running platform is, and which of its parts are missing.

    Attributes:
        missing: part name (``gateway``, ``worker``, ``sink``, ``deliver``, ``node``) ->
            why it is not available; parts not listed are running.
    """

    kafka: KafkaConnection
    pg_dsn: str
    registry_url: str | None
    gateway_url: str | None
    portal_url: str | None
    missing: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoOptions:
    """What ``lintas demo``'s options ask for.

    Attributes:
        duration_s: how long the applications publish; None: until stopped.
        preset: the rate preset (``--rate``, ``--speed``).
        story: whether to play the story.
        bad_share: the share of deliberately bad events.
        seed: makes the generated people repeatable.
        story_timeout_s: how long each story step after the registration may take.
    """

    duration_s: float | None = None
    preset: RatePreset
    story: bool = True
    bad_share: float = BAD_SHARE
    seed: int | None = None
    story_timeout_s: float = 60.0


class DemoRun:
    """The demo's parts and what they did; read it to show progress.

    Args:
        settings: the root settings (data directory, Kafka settings, time zone).
        platform: the running platform.
        options: the run's options.
        apps: the simulated applications.
    """

    def __init__(
        self,
        settings: Settings,
        platform: Platform,
        options: DemoOptions,
        *,
        apps: tuple[SimApp, ...] = DEMO_APPS,
    ) -> None:
        self.settings = settings
        self.platform = platform
        self.options = options
        self.apps = apps
        self.missing = dict(platform.missing)
        self.phase = "starting"
        self.directory: DemoDirectory | None = None
        self.simulator: Simulator | None = None
        self.story: Story | None = None
        self.receiver: WebhookReceiver | None = None
        self.dead_letters = DeadLetterCounter(
            topic=settings.streams.topic_prefix + DLQ_TOPIC,
            sources=frozenset(a.source for a in apps),
        )
        self.paused: list[str] = []
        self.started_at = time.monotonic()
        self.stopped_at: float | None = None
        self.notes: list[str] = []
        self._sdk: SdkPublisher | None = None
        self._node: NodeGatewayPublisher | None = None
        self._tail: TopicTail | None = None

    @property
    def elapsed_s(self) -> float:
        return (self.stopped_at or time.monotonic()) - self.started_at

    def spooled(self) -> int:
        """Events waiting in the SDK producers' spools now."""
        return self._sdk.spooled() if self._sdk is not None else 0

    # -- the run --------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Set up, run until the duration is over or ``stop`` is set, then stop cleanly.

        Raises:
            DemoError: the demo could not be set up (nothing keeps running then).
        """
        state = DemoState.load(self.settings.data_dir)
        receiver = WebhookReceiver(
            {name: [] for name in webhook_subscribers()}, port=state.receiver_port
        )
        await receiver.start()
        self.receiver = receiver
        try:
            if receiver.port != state.receiver_port:
                state.receiver_port = receiver.port
                state.save()
            directory = await Directory.open(self.settings)
            try:
                await self._run(directory, state, receiver, stop)
            finally:
                self.phase = "stopping"
                await self._shutdown(directory)
        finally:
            # Last: the deliverer may still be delivering while the rest stops.
            await receiver.stop()
            self.stopped_at = time.monotonic()
            self.phase = "stopped"

    async def _run(
        self,
        directory: Directory,
        state: DemoState,
        receiver: WebhookReceiver,
        stop: asyncio.Event,
    ) -> None:
        self.phase = "loading the demo directory"
        self.directory = await prepare_directory(
            directory,
            state=state,
            gateway_apps=[a.app_id for a in self.apps if a.channel is Channel.GATEWAY],
            webhook_url=receiver.url,
            kafka=self.platform.kafka,
            kafka_settings=self.settings.kafka,
        )
        for name, secrets in self.directory.webhook_secrets.items():
            receiver.set_secrets(name, secrets)
        self.phase = "starting the applications"
        publishers = await self._start_publishers(self.directory.api_keys)
        await self._start_tail()
        await self._simulate(publishers, receiver, stop)

    async def _start_publishers(self, api_keys: Mapping[str, str]) -> dict[str, Publisher]:
        publishers: dict[str, Publisher] = {}
        sdk_apps = [a for a in self.apps if a.channel is Channel.SDK]
        self._sdk = SdkPublisher(
            self.settings, connection=self.platform.kafka, registry_url=self.platform.registry_url
        )
        await self._sdk.start(sdk_apps)
        publishers.update({a.app_id: self._sdk for a in sdk_apps})
        gateway_apps = [a for a in self.apps if a.channel is Channel.GATEWAY]
        if self.platform.gateway_url is None or "gateway" in self.missing:
            self.missing.setdefault("gateway", "not running")
            return publishers
        node = NodeGatewayPublisher(
            self.platform.gateway_url,
            api_keys,
            log_path=self.settings.data_dir / "logs" / "demo-gateway-client.log",
        )
        try:
            await node.start()
        except DemoError as exc:
            self.missing["node"] = exc.message
            return publishers
        self._node = node
        publishers.update({a.app_id: node for a in gateway_apps})
        return publishers

    async def _start_tail(self) -> None:
        topics = [self.dead_letters.topic, f"lintas.deliver.{BAPENDA_SUBSCRIBER}"]
        tail = TopicTail(self.platform.kafka, topics)
        try:
            await tail.start()
        except Exception as exc:  # counting dead letters is a nicety; the demo goes on
            self.notes.append(f"cannot follow {', '.join(topics)}: {exc}")
            with contextlib.suppress(Exception):
                await tail.stop()
            return
        tail.listen(self.dead_letters)
        self._tail = tail
        if tail.missing:
            self.notes.append(f"topics missing (lintas topics sync): {', '.join(tail.missing)}")

    async def _simulate(
        self, publishers: dict[str, Publisher], receiver: WebhookReceiver, stop: asyncio.Event
    ) -> None:
        rng = random.Random(self.options.seed)
        today = dt.datetime.now(dt.UTC).date()
        factory = EventFactory(Population(rng, today=today), rng)
        zone = self.settings.display_zone
        clock = SimClock(start=dt.datetime.now(zone), speed=self.options.preset.speed)
        idle = {
            a.app_id: f"{part}: {self.missing[part]}"
            for a in self.apps
            if a.app_id not in publishers
            for part in ("gateway", "node")
            if part in self.missing
        }
        self.simulator = Simulator(
            self.apps,
            publishers,
            factory,
            preset=self.options.preset,
            clock=clock,
            idle=idle,
            bad_share=self.options.bad_share,
            scale=self.settings.test_scale,
        )
        sim_stop = asyncio.Event()
        self.phase = "running"
        simulating = asyncio.create_task(self.simulator.run(sim_stop), name="demo-simulator")
        story_task = None
        if self.options.story:
            self.story = Story(
                factory=factory,
                apps={a.app_id: a for a in self.apps},
                publishers=publishers,
                receiver=receiver,
                tail=self._tail,
                bapenda_topic=f"lintas.deliver.{BAPENDA_SUBSCRIBER}",
                pg_dsn=self.platform.pg_dsn,
                missing=self.missing,
                timeout_s=self.options.story_timeout_s,
            )
            story_task = asyncio.create_task(self._story_later(stop), name="demo-story")
        try:
            await _wait(stop, self.options.duration_s)
            sim_stop.set()
            self.phase = "stopping the applications"
            await simulating
            if story_task is not None and not stop.is_set():
                self.phase = "finishing the story"
                await _first(story_task, stop)
            if not stop.is_set():
                self.phase = "counting dead letters"
                await self._settle(stop)
        finally:
            sim_stop.set()
            for task in (simulating, story_task):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if self.story is not None:
                self.story.interrupt()  # what was cut short says so; the rest is kept

    async def _story_later(self, stop: asyncio.Event) -> None:
        assert self.story is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), _STORY_DELAY_S)
        if not stop.is_set():
            await self.story.run()

    async def _settle(self, stop: asyncio.Event) -> None:
        """Wait (briefly) until the worker has dead-lettered the bad events taken."""
        if self.simulator is None or "worker" in self.missing or self._tail is None:
            return
        expected = sum(s.bad for s in self.simulator.stats.values())
        deadline = time.monotonic() + _SETTLE_S
        while self.dead_letters.total < expected and time.monotonic() < deadline:
            if stop.is_set():
                return
            await asyncio.sleep(0.5)

    async def _shutdown(self, directory: Directory) -> None:
        # Producers first: what they hold is flushed to Kafka (or stays in their spools).
        if self._sdk is not None:
            await self._sdk.stop()
        if self._node is not None:
            await self._node.stop()
        if self._tail is not None:
            await self._tail.stop()
        try:
            self.paused = await pause_webhooks(directory, webhook_subscribers())
        except Exception as exc:  # the run is over either way; say what was left undone
            self.notes.append(f"webhook subscribers not paused: {exc}")
        await directory.close()

    # -- the outcome ------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Everything the run did, JSON-able (``lintas demo --json``); no secrets in it."""
        stats = self.simulator.stats if self.simulator else {}
        apps = {
            a.app_id: {
                "opd": a.opd,
                "channel": a.channel.value,
                "sent": s.sent,
                "spooled": s.spooled,
                "refused": s.refused,
                "failed": s.failed,
                "bad": s.bad,
                "idle": s.idle or None,
                "last_error": s.last_error or None,
            }
            for a in self.apps
            if (s := stats.get(a.app_id)) is not None
        }
        per_opd: dict[str, int] = {}
        for a in self.apps:
            if (s := stats.get(a.app_id)) is not None:
                per_opd[a.opd] = per_opd.get(a.opd, 0) + s.taken
        story = None
        if self.story is not None:
            story = {
                "citizen": self.story.citizen_label,
                "ok": self.story.ok,
                "steps": {
                    k: {"state": s.state.value, "detail": s.detail, "seconds": s.seconds}
                    for k, s in self.story.steps.items()
                },
                "webhook_data": dict(self.story.webhook_data or {}),
            }
        directory = self.directory
        return {
            "elapsed_s": round(self.elapsed_s, 1),
            "rate": self.options.preset.describe(),
            "portal_url": self.platform.portal_url,
            "directory": None
            if directory is None
            else {
                "opds": directory.opds,
                "applications": directory.applications,
                "changes": dict(directory.counts),
                "new_keys": list(directory.new_keys),
            },
            "apps": apps,
            "events_per_opd": per_opd,
            "dlq": {
                "total": self.dead_letters.total,
                "by_reason": dict(self.dead_letters.by_reason),
                "other_sources": self.dead_letters.others,
            },
            "webhooks": {
                name: {
                    "verified": self.receiver.counts.get(name, 0),
                    "rejected": self.receiver.rejected.get(name, 0),
                }
                for name in webhook_subscribers()
            }
            if self.receiver
            else {},
            "story": story,
            "missing": dict(self.missing),
            "paused_subscribers": list(self.paused),
            "notes": list(self.notes),
        }


async def _wait(stop: asyncio.Event, seconds: float | None) -> None:
    if seconds is None:
        await stop.wait()
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _first(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    """Wait for ``task``, or until ``stop`` is set, whichever comes first."""
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()

"""The story's events, and how it reports the parts of the platform that are missing.

The platform itself is replaced by a recording publisher here; tests/integration/test_demo.py
plays the story on a real stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
from collections.abc import Sequence

from lintas.demo import DEMO_APPS, EventFactory, Population, SimApp, SimEvent, StepState, Story
from lintas.demo.receiver import WebhookReceiver
from lintas.demo.types import Outcome, OutcomeStatus

APPS = {a.app_id: a for a in DEMO_APPS}


class RecordingPublisher:
    def __init__(self) -> None:
        self.events: list[tuple[str, SimEvent]] = []

    async def publish(self, app: SimApp, events: Sequence[SimEvent]) -> list[Outcome]:
        self.events += [(app.app_id, e) for e in events]
        return [Outcome(e.id, OutcomeStatus.SENT) for e in events]


def _story(missing: dict[str, str], publisher: RecordingPublisher) -> Story:
    rng = random.Random(3)
    factory = EventFactory(Population(rng, today=dt.date.today()), rng)
    return Story(
        factory=factory,
        apps=APPS,
        publishers={"sipbansos": publisher, "siak-bandung": publisher},
        receiver=WebhookReceiver({"dinsos-sipbansos": []}),
        tail=None,
        bapenda_topic="lintas.deliver.bapenda-epad",
        pg_dsn="postgresql://unused@127.0.0.1:1/none",
        missing=missing,
        timeout_s=1,
    )


async def test_without_the_worker_the_deliveries_are_not_available_not_faked() -> None:
    publisher = RecordingPublisher()
    missing = {"worker": "not running (`lintas logs worker`)", "deliver": "not running"}
    story = _story(missing, publisher)
    await story.run()
    steps = story.steps
    assert steps["bansos"].state is StepState.DONE
    assert steps["kematian"].state is StepState.DONE
    for key in ("webhook", "bapenda", "analytics"):
        assert steps[key].state is StepState.UNAVAILABLE, key
        assert "worker: not running" in steps[key].detail
        assert steps[key].seconds is None
    assert "deliver: not running" in steps["webhook"].detail
    assert story.finished and story.ok

    # The aid went out after the death, to the same citizen, in Kota Bandung.
    (bansos_app, bansos), (death_app, death) = publisher.events
    assert (bansos_app, death_app) == ("sipbansos", "siak-bandung")
    assert bansos.event_type == "dinsos.bansos_disalurkan.v1"
    assert death.event_type == "dukcapil.kematian_dicatat.v1"
    assert bansos.record["nik"] == death.record["nik"]
    paid = bansos.record["disalurkan_pada"].date()
    assert death.record["tanggal_kematian"] < paid < death.record["dicatat_pada"].date()
    assert death.record["kode_wilayah"].startswith("32.73.")  # Bapenda's filter


async def test_without_the_gateway_the_disbursement_is_not_available() -> None:
    publisher = RecordingPublisher()
    story = _story({"gateway": "not running", "worker": "not running"}, publisher)
    await story.run()
    assert story.steps["bansos"].state is StepState.UNAVAILABLE
    assert "gateway: not running" in story.steps["bansos"].detail
    assert story.steps["analytics"].state is StepState.UNAVAILABLE
    assert [e.event_type for _, e in publisher.events] == ["dukcapil.kematian_dicatat.v1"]


async def test_a_step_that_does_not_happen_in_time_fails() -> None:
    """Every part "running" but nothing arrives: the webhook step fails, it is not skipped."""
    publisher = RecordingPublisher()
    story = _story({"sink": "not running"}, publisher)
    await story.run()
    assert story.steps["webhook"].state is StepState.FAILED
    assert "no signed delivery to dinsos-sipbansos within 1 s" in story.steps["webhook"].detail
    assert story.steps["bapenda"].state is StepState.UNAVAILABLE  # no Kafka reader given
    assert not story.ok


class StuckPublisher(RecordingPublisher):
    """Takes the disbursement, then never answers (Kafka hanging)."""

    def __init__(self) -> None:
        super().__init__()
        self.stuck = asyncio.Event()

    async def publish(self, app: SimApp, events: Sequence[SimEvent]) -> list[Outcome]:
        if events[0].event_type == "dukcapil.kematian_dicatat.v1":
            self.stuck.set()
            await asyncio.Event().wait()
        return await super().publish(app, events)


async def test_stopping_mid_story_marks_what_did_not_happen_as_interrupted() -> None:
    publisher = StuckPublisher()
    story = _story({}, publisher)
    task = asyncio.create_task(story.run())
    await asyncio.wait_for(publisher.stuck.wait(), 10)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    story.interrupt()
    states = {k: s.state for k, s in story.steps.items()}
    assert states["bansos"] is StepState.DONE
    assert states["kematian"] is StepState.INTERRUPTED
    assert states["webhook"] is StepState.INTERRUPTED
    assert states["bapenda"] is StepState.UNAVAILABLE  # no Kafka reader in this test

"""The story the platform exists for, played once per demo and timed.

An elderly citizen of Kota Bandung receives PKH from Dinsos. They die; the family reports
it weeks later, so one more disbursement goes out after the death. Dukcapil registers the
death, and then, through Lintas and within seconds:

1. ``bansos``     SIP Bansos (PHP in real life; Node.js here, through the HTTP gateway) had
                  paid the aid, five days ago, after the death;
2. ``kematian``   SIAK registers the death (Python SDK);
3. ``webhook``    Dinsos's SIP Bansos receives it on its webhook, signature verified, with
                  only the fields its subscription allows;
4. ``bapenda``    Bapenda's topic ``lintas.deliver.bapenda-epad`` has it (PBB-P2 records);
5. ``analytics``  ``analytics.aid_recipients_deceased`` shows the aid paid after the death.

Each step needs parts of the platform; a part that is not running makes its step
"not available: <part>" (never a pretend success), and a step that does not happen within
its time limit fails with what was waited for.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import lokal

from lintas.postgres import connect

from .apps import SimApp
from .generators import EventFactory
from .publishers import Publisher
from .receiver import ReceivedWebhook, WebhookReceiver
from .types import OutcomeStatus, SimEvent
from .watch import TailRecord, TopicTail, header

__all__ = ["STEP_TITLES", "Story", "StoryStep", "StepState"]

log = logging.getLogger(__name__)

_KEMATIAN = "dukcapil.kematian_dicatat.v1"
_BANSOS = "dinsos.bansos_disalurkan.v1"
_DINSOS = "dinsos-sipbansos"
_VIEW = "analytics.aid_recipients_deceased"
# From registration to the deliverer's POST, the routed record and the stored row: seconds
# on a healthy platform; a minute means something is wrong (or the machine is very busy).
DEFAULT_TIMEOUT_S = 60.0
_POLL_S = 1.0

STEP_TITLES: Mapping[str, str] = {
    "bansos": "Dinsos paid PKH (SIP Bansos, Node.js → gateway)",
    "kematian": "Dukcapil registered the death (SIAK, Python SDK)",
    "webhook": "Dinsos's webhook received it (signature verified)",
    "bapenda": "Bapenda's topic lintas.deliver.bapenda-epad has it",
    "analytics": f"{_VIEW} shows the aid paid after death",
}
# The platform's parts each step needs, beside Kafka.
_NEEDS: Mapping[str, tuple[str, ...]] = {
    "bansos": ("gateway", "node"),
    "kematian": (),
    "webhook": ("worker", "deliver"),
    "bapenda": ("worker",),
    # The view joins the disbursement (through the gateway) with the death.
    "analytics": ("worker", "sink", "gateway", "node"),
}


class StepState(enum.StrEnum):
    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    UNAVAILABLE = "not available"
    INTERRUPTED = "interrupted"


@dataclass(slots=True)
class StoryStep:
    """One step: its state, what happened, and how long after the death was registered."""

    key: str
    title: str
    state: StepState = StepState.WAITING
    detail: str = ""
    seconds: float | None = None


def _mask(nik: str) -> str:
    return str(lokal.partial_mask("NIK", nik))


class Story:
    """Plays the story (see the module doc) on the running platform.

    Args:
        factory: makes the events (and the citizen).
        apps: the applications by id: ``sipbansos`` and ``siak-bandung`` are used.
        publishers: application id -> its publisher (missing: it cannot publish).
        receiver: the webhook receiver playing Dinsos's endpoint.
        tail: follows Bapenda's delivery topic (None: it could not be read).
        bapenda_topic: Bapenda's delivery topic.
        pg_dsn: the platform database, for the analytics view.
        missing: the platform parts that are not running, with why.
        timeout_s: how long each step after the registration may take.
    """

    def __init__(
        self,
        *,
        factory: EventFactory,
        apps: Mapping[str, SimApp],
        publishers: Mapping[str, Publisher],
        receiver: WebhookReceiver,
        tail: TopicTail | None,
        bapenda_topic: str,
        pg_dsn: str,
        missing: Mapping[str, str],
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._factory = factory
        self._apps = apps
        self._publishers = publishers
        self._receiver = receiver
        self._tail = tail
        self._bapenda_topic = bapenda_topic
        self._pg_dsn = pg_dsn
        self._missing = dict(missing)
        self._timeout = timeout_s
        self.steps = {key: StoryStep(key, title) for key, title in STEP_TITLES.items()}
        self.citizen_label = ""
        self.webhook_data: Mapping[str, Any] | None = None
        """What Dinsos's endpoint received (the event's data, as the subscription allows)."""
        self.finished = False
        self._watchers: list[asyncio.Future[Any]] = []
        self._listeners: list[Callable[[ReceivedWebhook], None]] = []

    @property
    def ok(self) -> bool:
        """Every step done (or not available, which the demo reports as such)."""
        return all(s.state in (StepState.DONE, StepState.UNAVAILABLE) for s in self.steps.values())

    def _unavailable(self, key: str) -> bool:
        """Mark step ``key`` not available when a part it needs is missing; whether it was."""
        gone = [(part, self._missing[part]) for part in _NEEDS[key] if part in self._missing]
        if key == "bapenda" and self._tail is None:
            gone.append(("Kafka reader", f"the demo cannot follow {self._bapenda_topic}"))
        if not gone:
            return False
        step = self.steps[key]
        step.state = StepState.UNAVAILABLE
        step.detail = "; ".join(f"{part}: {why}" for part, why in gone)
        return True

    def interrupt(self) -> None:
        """Mark what has not happened as interrupted (the demo is stopping)."""
        for step in self.steps.values():
            if step.state in (StepState.WAITING, StepState.RUNNING):
                step.state = StepState.INTERRUPTED
        self.finished = True

    async def run(self) -> None:
        """Play the story; the steps' states say how it went (it raises nothing of its own)."""
        try:
            await self._run()
        except Exception as exc:  # e.g. the database went away: the steps say so
            log.warning("the story stopped: %s", exc, exc_info=True)
            for step in self.steps.values():
                if step.state in (StepState.WAITING, StepState.RUNNING):
                    step.state, step.detail = StepState.FAILED, f"{type(exc).__name__}: {exc}"
        finally:
            for watcher in self._watchers:
                watcher.cancel()
            for listener in self._listeners:
                self._receiver.unlisten(listener)
            self.finished = True

    async def _run(self) -> None:
        people = self._factory.people
        citizen = people.person(min_age=68, max_age=82)
        today = dt.datetime.now(dt.UTC).date()
        died = today - dt.timedelta(days=20)
        paid = dt.datetime.combine(
            today - dt.timedelta(days=5), dt.time(2, 0), tzinfo=dt.UTC
        )  # 09:00 WIB
        self.citizen_label = (
            f"{lokal.partial_mask('NAME', citizen.nama)} (NIK {_mask(citizen.nik)})"
        )

        bansos_id: str | None = None
        if not self._unavailable("bansos"):
            record = self._factory.bansos_disalurkan(citizen, disalurkan_pada=paid)
            paid_after = (paid.date() - died).days
            bansos_id = await self._publish(
                "bansos",
                "sipbansos",
                _BANSOS,
                record,
                f"{record['program']} {lokal.format_rupiah(record['nilai'])} paid on "
                f"{paid:%d %b}, {paid_after} days after the death",
            )
        record = self._factory.kematian(citizen, tanggal_kematian=died)
        death = SimEvent(event_type=_KEMATIAN, record=record, id=_new_id())
        # Every wait starts before the death is published, so nothing can slip past.
        waits: dict[str, Callable[[float], Awaitable[None]]] = {}
        if not self._unavailable("webhook"):
            waits["webhook"] = self._webhook_wait(death.id)
        if not self._unavailable("bapenda"):
            waits["bapenda"] = self._bapenda_wait(death.id)
        if not self._unavailable("analytics") and bansos_id is not None:
            waits["analytics"] = self._analytics_wait(bansos_id)
        elif self.steps["analytics"].state is StepState.WAITING:
            self.steps["analytics"].state = StepState.FAILED
            self.steps["analytics"].detail = "the disbursement was not published"
        for key in waits:
            self.steps[key].state = StepState.RUNNING
        started = await self._publish_event(
            "kematian", "siak-bandung", death, f"died {died:%d %b %Y}, registered today"
        )
        if started is None:
            for key in waits:
                self.steps[key].state = StepState.FAILED
                self.steps[key].detail = "the death was not published"
            return
        await asyncio.gather(*(wait(started) for wait in waits.values()))

    # -- publishing ---------------------------------------------------------------------------

    async def _publish(
        self, key: str, app_id: str, event_type: str, record: dict[str, Any], detail: str
    ) -> str | None:
        event = SimEvent(event_type=event_type, record=record, id=_new_id())
        return event.id if await self._publish_event(key, app_id, event, detail) else None

    async def _publish_event(
        self, key: str, app_id: str, event: SimEvent, detail: str
    ) -> float | None:
        """Publish; the moment Kafka (or a spool) took it, or None when it was not taken."""
        step = self.steps[key]
        step.state = StepState.RUNNING
        publisher = self._publishers.get(app_id)
        if publisher is None:
            step.state, step.detail = StepState.UNAVAILABLE, f"{app_id} cannot publish"
            return None
        try:
            [outcome] = await publisher.publish(self._apps[app_id], [event])
        except Exception as exc:  # the story reports a failed step; it must not end the demo
            step.state, step.detail = StepState.FAILED, str(exc)
            return None
        if outcome.status not in (OutcomeStatus.SENT, OutcomeStatus.SPOOLED):
            step.state, step.detail = StepState.FAILED, f"{outcome.status}: {outcome.detail}"
            return None
        step.state = StepState.DONE
        step.detail = f"{detail} ({outcome.status})"
        return time.monotonic()

    # -- waiting --------------------------------------------------------------------------------

    def _done(self, key: str, started: float, detail: str, *, at: float | None = None) -> None:
        """Mark a step done; ``at`` is when it happened (``time.monotonic()``; now if None)."""
        step = self.steps[key]
        step.state, step.detail = StepState.DONE, detail
        step.seconds = round(max(0.0, (at or time.monotonic()) - started), 2)

    def _timed_out(self, key: str, what: str) -> None:
        step = self.steps[key]
        step.state = StepState.FAILED
        step.detail = f"{what} within {self._timeout:g} s"

    def _webhook_wait(self, event_id: str) -> Callable[[float], Awaitable[None]]:
        arrived: asyncio.Future[ReceivedWebhook] = asyncio.get_running_loop().create_future()

        def check(received: ReceivedWebhook) -> None:
            ours = received.webhook_id == event_id and received.subscriber == _DINSOS
            if ours and received.verified and not arrived.done():
                arrived.set_result(received)

        self._receiver.listen(check)
        self._listeners.append(check)

        async def wait(started: float) -> None:
            try:
                received = await asyncio.wait_for(arrived, self._timeout)
            except TimeoutError:
                rejected = self._receiver.rejected.get(_DINSOS, 0)
                why = f" ({rejected} with a bad signature)" if rejected else ""
                self._timed_out("webhook", f"no signed delivery to {_DINSOS}{why}")
                return
            self.webhook_data = received.data
            fields = ", ".join(sorted(received.data or {}))
            self._done("webhook", started, f"{_DINSOS} got {fields}", at=received.received_at)

        return wait

    def _bapenda_wait(self, event_id: str) -> Callable[[float], Awaitable[None]]:
        assert self._tail is not None
        tail, topic = self._tail, self._bapenda_topic

        def match(record: TailRecord) -> bool:
            return record.topic == topic and header(record, "ce_id") == event_id

        # Listening from now (before the death is published); the time limit runs from here.
        found = asyncio.ensure_future(tail.wait_for(match, timeout=self._timeout))
        self._watchers.append(found)

        async def wait(started: float) -> None:
            try:
                record = await found
            except TimeoutError:
                self._timed_out("bapenda", f"nothing on {topic}")
                return
            keyed = "keyed by NIK" if record.key else "without key"
            self._done("bapenda", started, f"{topic}, {keyed}", at=record.read_at)

        return wait

    def _analytics_wait(self, bansos_id: str) -> Callable[[float], Awaitable[None]]:
        async def wait(started: float) -> None:
            deadline = started + self._timeout
            last_error = ""
            conn = await connect(self._pg_dsn, application_name="lintas-demo")
            try:
                while time.monotonic() < deadline:
                    try:
                        row = await conn.fetchrow(
                            f"SELECT program, days_after_death, paid_after_death FROM {_VIEW} "
                            "WHERE event_id::text = $1",
                            bansos_id,
                        )
                    except Exception as exc:  # the view appears when the sink first starts
                        row, last_error = None, f" ({type(exc).__name__}: {exc})"
                    if row is not None:
                        after = "after" if row["paid_after_death"] else "before"
                        self._done(
                            "analytics",
                            started,
                            f"{row['program']} paid {row['days_after_death']} days {after} "
                            "the death",
                        )
                        return
                    await asyncio.sleep(_POLL_S)
            finally:
                await conn.close()
            self._timed_out("analytics", f"no row in {_VIEW}{last_error}")

        return wait


def _new_id() -> str:
    return str(uuid.uuid4())

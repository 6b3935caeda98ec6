"""The demo's progress for people: a live panel in a terminal, one line otherwise.

Reads a :class:`~lintas.demo.runner.DemoRun` and renders it with rich: events per OPD and
application, what is spooled, what reached the DLQ and why, the webhooks received, and
the story's steps. Personal data is masked (the story's citizen shows as ``3273********0001``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import lokal
from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .apps import Channel
from .runner import DemoRun
from .story import StepState
from .traffic import DayKind, Profile, activity, day_kind, holiday_names

__all__ = ["progress_line", "render", "story_lines"]

_HARI = ("Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu")
_STEP_STYLE = {
    StepState.WAITING: ("·", "dim"),
    StepState.RUNNING: ("…", "yellow"),
    StepState.DONE: ("✓", "green"),
    StepState.FAILED: ("✗", "red"),
    StepState.UNAVAILABLE: ("-", "magenta"),
    StepState.INTERRUPTED: ("■", "dim"),
}


def clock_line(run: DemoRun) -> str:
    """The simulated moment, and what kind of moment it is for the Pemda's offices."""
    sim = run.simulator
    if sim is None:
        return ""
    now = sim.clock.now()
    kind = day_kind(now.date())
    if kind is DayKind.HOLIDAY:
        what = "libur: " + ", ".join(holiday_names(now.date()))
    elif kind is DayKind.WEEKEND:
        what = "akhir pekan"
    elif activity(Profile.OFFICE, now) >= 0.5:
        what = "jam kerja"
    else:
        what = "di luar jam kerja"
    if kind is DayKind.UNKNOWN_YEAR:
        what += " (no holiday calendar for this year in lokal-id)"
    zone = now.tzname() or ""
    return (
        f"{_HARI[now.weekday()]} {now:%d %b %Y %H:%M} {zone} · {what} · "
        f"rate {run.options.preset.describe()}"
    )


def _apps_table(run: DemoRun) -> Table:
    table = Table(expand=True, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name in ("OPD", "application", "via"):
        table.add_column(name, no_wrap=True)
    for name in ("/min", "sent", "spooled", "bad", "refused", "failed"):
        table.add_column(name, justify="right", no_wrap=True)
    stats = run.simulator.stats if run.simulator else {}
    totals = [0, 0, 0, 0, 0]
    for app in sorted(run.apps, key=lambda a: (a.opd, a.app_id)):
        s = stats.get(app.app_id)
        if s is None:
            continue
        via = "SDK" if app.channel is Channel.SDK else "gateway (Node.js)"
        if s.idle:
            table.add_row(app.opd, app.label, via, "", Text(f"idle: {s.idle}", "magenta"))
            continue
        counts = (s.sent, s.spooled, s.bad, s.refused, s.failed)
        totals = [t + c for t, c in zip(totals, counts, strict=True)]
        table.add_row(
            app.opd,
            app.label,
            via,
            f"{s.rate * 60:.0f}",
            *(
                _count(c, style)
                for c, style in zip(counts, ("", "yellow", "", "red", "red"), strict=True)
            ),
        )
    table.add_section()
    table.add_row("", Text("total", "bold"), "", "", *(_count(t, "bold") for t in totals))
    return table


def _count(value: int, style: str) -> Text:
    return Text(str(value), style=style if value else "dim")


def _dlq_line(run: DemoRun) -> Text:
    counter = run.dead_letters
    taken = sum(s.bad for s in run.simulator.stats.values()) if run.simulator else 0
    reasons = ", ".join(f"{r} {n}" for r, n in sorted(counter.by_reason.items()))
    text = Text(f"lintas.dlq: {counter.total} of the {taken} bad events")
    if reasons:
        text.append(f" ({reasons})")
    if "worker" in run.missing:
        text.append(f" · worker not available: {run.missing['worker']}", "magenta")
    text.append(f" · spooled now: {run.spooled()}")
    return text


def _webhooks_line(run: DemoRun) -> Text:
    receiver = run.receiver
    if receiver is None:
        return Text("")
    parts = [f"{name} {n} ✓" for name, n in sorted(receiver.counts.items())]
    parts += [f"{name} {n} bad signature" for name, n in sorted(receiver.rejected.items())]
    where = f"webhooks received on 127.0.0.1:{receiver.port}: "
    return Text(where + (", ".join(parts) if parts else "none yet"))


def story_lines(run: DemoRun) -> list[Text]:
    """The story, a line per step: state, title, how long after the registration, detail."""
    story = run.story
    if story is None:
        return [Text("story: off (--no-story)", "dim")]
    lines = [Text(f"The story of {story.citizen_label or 'an elderly aid recipient'}", "bold")]
    for step in story.steps.values():
        mark, style = _STEP_STYLE[step.state]
        # One line per step however narrow the terminal: the live panel must fit.
        line = Text(f" {mark} ", style, no_wrap=True, overflow="ellipsis")
        line.append(step.title)
        if step.seconds is not None:
            line.append(f"  +{step.seconds:.2f} s", "bold green")
        if step.state is StepState.UNAVAILABLE:
            line.append(f"  not available: {step.detail}", style)
        elif step.detail:
            line.append(f"  {step.detail}", "dim" if step.state is StepState.DONE else style)
        lines.append(line)
    if story.webhook_data:
        received = f"   Dinsos received: {_masked(story.webhook_data)}"
        lines.append(Text(received, "cyan", no_wrap=True, overflow="ellipsis"))
    return lines


def _masked(data: Mapping[str, Any]) -> str:
    shown = {
        k: lokal.partial_mask("NIK", str(v)) if k in ("nik", "nomor_kk") and v else v
        for k, v in data.items()
    }
    return ", ".join(f"{k}={v}" for k, v in shown.items())


def render(run: DemoRun, *, header: RenderableType | None = None) -> RenderableType:
    """The live panel."""
    parts: list[RenderableType] = []
    if header is not None:
        parts.append(header)
    parts.append(Text(clock_line(run), "cyan", no_wrap=True, overflow="ellipsis"))
    parts.append(_apps_table(run))
    parts.append(_dlq_line(run))
    parts.append(_webhooks_line(run))
    parts.extend(story_lines(run))
    for note in run.notes:
        parts.append(Text(note, "yellow"))
    elapsed = dt.timedelta(seconds=int(run.elapsed_s))
    title = f"lintas demo · {run.phase} · {elapsed}"
    return Panel(
        Group(*parts), title=title, subtitle="Ctrl-C stops the demo (the platform keeps running)"
    )


def progress_line(run: DemoRun) -> str:
    """One line for logs and pipes: totals, DLQ, story."""
    stats = run.simulator.stats.values() if run.simulator else ()
    sent = sum(s.taken for s in stats)
    story = ""
    if run.story is not None:
        done = sum(1 for s in run.story.steps.values() if s.state is StepState.DONE)
        story = f", story {done}/{len(run.story.steps)} steps"
    return (
        f"[{int(run.elapsed_s)}s] {run.phase}: {sent} events taken, "
        f"{run.dead_letters.total} in the DLQ, {run.spooled()} spooled{story}"
    )

"""``lintas demo``: start the platform and show it working, with a Pemda's traffic and story."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.live import Live
from rich.text import Text

from ._app import app, console, err_console, settings_of

if TYPE_CHECKING:
    from lintas.demo import DemoRun, Platform
    from lintas.deploy.local import LocalStack
    from lintas.settings import Settings

# The parts of the platform the demo's steps need, besides Kafka and PostgreSQL.
_PARTS = ("registry", "gateway", "worker", "sink", "deliver", "portal")
_LINE_EVERY_S = 10.0
_REFRESH_S = 0.5

_RATE_HELP = (
    "How much traffic: real (a Kota's actual volume on the real clock: quiet at night and on "
    "holidays), normal (5 events/s at the peak, one simulated hour per minute, never below "
    "20% of the peak), high (25 events/s, never below 50%), or a number of events/s at the "
    "peak."
)


@app.command()
def demo(
    ctx: typer.Context,
    duration: Annotated[
        float | None,
        typer.Option("--duration", min=5, help="Seconds to publish for (default: until Ctrl-C)."),
    ] = None,
    rate: Annotated[str, typer.Option("--rate", help=_RATE_HELP)] = "normal",
    speed: Annotated[
        float | None,
        typer.Option(
            "--speed",
            help="Simulated seconds per real second for the office-hours and holiday shape "
            "(time compression; 1 follows the real clock). Overrides the rate's.",
        ),
    ] = None,
    no_story: Annotated[
        bool, typer.Option("--no-story", help="Only the traffic: do not play the story.")
    ] = False,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Make the generated people repeatable.")
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="No live display: a JSON summary on stdout at the end."),
    ] = False,
) -> None:
    """Start the platform and show it working: a Pemda's OPD applications, live.

    Starts the local stack (like `lintas up`), registers Kota Bandung's 7 OPDs and 11
    applications (once; a second run reuses them), and runs simulated OPD applications
    that publish a realistic flow shaped by office hours and the holiday calendar: six
    through the Python SDK, five through the HTTP gateway from Node.js, about 2% of
    events deliberately bad (they land in the DLQ). It plays the story the platform exists
    for: a death registered at Dukcapil reaches Dinsos's webhook and Bapenda's topic within
    seconds, and the analysts' view of aid paid after death shows it.

    Ctrl-C stops the applications and flushes their events; the platform keeps running
    (`lintas down` stops it). See docs/demo.md.
    """
    from lintas.demo import DemoOptions, DemoRun, parse_rate

    try:
        preset = parse_rate(rate, speed=speed)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--rate/--speed") from exc
    settings = settings_of(ctx)
    stack = _start_stack(settings)
    platform = _platform(stack, settings)
    options = DemoOptions(duration_s=duration, preset=preset, story=not no_story, seed=seed)
    run = DemoRun(settings, platform, options)
    _log_to_file(settings.data_dir / "logs" / "demo.log")
    login = _login_hint(settings.data_dir, platform.portal_url)
    live = console.is_terminal and not as_json
    if not live:
        err_console.print(login, highlight=False)
    if live:
        _run_live(run, login)
    else:
        asyncio.run(_run(run, _lines(run)))
    _finish(run, login, as_json=as_json)


def _start_stack(settings: Settings) -> LocalStack:
    from lintas.deploy.local import LocalStack

    started = time.monotonic()
    err_console.print("Starting the platform (lintas up) ...", highlight=False)
    stack = LocalStack(settings, progress=lambda msg: err_console.print(msg, highlight=False))
    stack.up()
    err_console.print(f"platform up in {time.monotonic() - started:.1f} s", highlight=False)
    return stack


def _platform(stack: LocalStack, settings: Settings) -> Platform:
    """Addresses, and the parts that are not running (their demo steps say so)."""
    from lintas.demo import Platform
    from lintas.endpoints import resolve_endpoints

    rows, _ = stack.status()
    state = {r.name: r for r in rows}
    missing: dict[str, str] = {}
    for part in _PARTS:
        row = state.get(part)
        if row is None:
            missing[part] = "not part of this platform's `lintas up` yet"
        elif not (row.running and row.healthy):
            missing[part] = f"not running (`lintas logs {part}`)"
    endpoints = resolve_endpoints(settings)
    return Platform(
        kafka=endpoints.kafka,
        pg_dsn=endpoints.pg_dsn,
        registry_url=endpoints.registry_url,
        gateway_url=endpoints.gateway_url,
        portal_url=endpoints.portal_url,
        missing=missing,
    )


def _login_hint(data_dir: Path, portal_url: str | None) -> str:
    from lintas.portal.bootstrap import ADMIN_NAME, admin_password_file

    if portal_url is None:
        return "Portal: not running (`lintas logs portal`)."
    # The password stays in its owner-only file (lintas up never prints it either).
    path = admin_password_file(data_dir)
    return f"Portal: {portal_url}  ·  sign in as {ADMIN_NAME!r}, password: `cat {path}`"


def _log_to_file(path: Path) -> None:
    """Send library logging (aiokafka's warnings, ...) to a file: not over the live panel."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)


def _run_live(run: DemoRun, login: str) -> None:
    from lintas.demo.display import render

    header = Text(login, style="bold")
    with Live(render(run, header=header), console=console, auto_refresh=False) as live:

        def refresh() -> None:
            live.update(render(run, header=header), refresh=True)

        asyncio.run(_run(run, refresh))


def _lines(run: DemoRun) -> Callable[[], None]:
    """For a log or a pipe: a progress line on stderr every few seconds."""
    from lintas.demo.display import progress_line

    last = [0.0]

    def line() -> None:
        now = time.monotonic()
        if now - last[0] >= _LINE_EVERY_S:
            last[0] = now
            err_console.print(progress_line(run), highlight=False)

    return line


async def _run(run: DemoRun, refresh: Callable[[], None]) -> None:
    """Run the demo; the first Ctrl-C (or SIGTERM) stops it cleanly, a second one at once."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal() -> None:
        stop.set()
        # Back to Python's own handling: another Ctrl-C raises KeyboardInterrupt.
        loop.remove_signal_handler(signal.SIGINT)
        loop.remove_signal_handler(signal.SIGTERM)

    loop.add_signal_handler(signal.SIGINT, on_signal)
    loop.add_signal_handler(signal.SIGTERM, on_signal)
    running = asyncio.create_task(run.run(stop), name="demo")
    try:
        while not running.done():
            refresh()
            await asyncio.wait({running}, timeout=_REFRESH_S)
        refresh()
        await running
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        loop.remove_signal_handler(signal.SIGTERM)


def _finish(run: DemoRun, login: str, *, as_json: bool) -> None:
    from lintas.demo.display import story_lines

    summary = run.summary()
    if as_json:
        print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    else:
        taken = sum(e["sent"] + e["spooled"] for e in summary["apps"].values())
        console.print(
            f"Published {taken} events in {summary['elapsed_s']:.0f} s; "
            f"{summary['dlq']['total']} dead letters seen.",
            highlight=False,
        )
        if not console.is_terminal:
            for line in story_lines(run):
                console.print(line)
    paused = summary["paused_subscribers"]
    if paused:
        err_console.print(
            f"Webhook subscribers {', '.join(paused)} are paused while the demo's receiver is "
            "away; the next `lintas demo` resumes them.",
            highlight=False,
        )
    err_console.print(
        f"The platform keeps running. {login}\nStop it with `lintas down` "
        "(`lintas down --purge` also deletes its data).",
        highlight=False,
    )

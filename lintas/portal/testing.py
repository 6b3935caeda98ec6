"""Helpers for tests of the portal: run it as a real process, sign in over HTTP.

Usage::

    with PortalProcess(env) as portal:
        client = httpx.Client(base_url=portal.url)
        sign_in(client, "siti", "a long passphrase")
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

__all__ = ["PortalProcess", "csrf_of", "free_port", "sign_in"]

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page.

    Raises:
        AssertionError: the page has no form with a token.
    """
    match = _CSRF.search(html)
    if match is None:
        raise AssertionError("no CSRF token on the page")
    return match.group(1)


def sign_in(client: httpx.Client, name: str, password: str) -> httpx.Response:
    """Sign in through the form, as a browser does; returns the form's answer."""
    token = csrf_of(client.get("/login").text)
    return client.post(
        "/login", data={"name": name, "password": password, "csrf_token": token, "next": "/"}
    )


class PortalProcess:
    """``lintas portal`` in a child process, with its own port and log.

    Args:
        env: the complete environment (``LINTAS_PG_DSN``, Kafka, ``LINTAS_DATA_DIR``, ...).
        log_path: where its output goes.
        timeout_s: how long to wait for ``/healthz``.
    """

    def __init__(self, env: dict[str, str], *, log_path: Path, timeout_s: float = 60.0) -> None:
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._timeout = timeout_s
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("wb")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "lintas.cli", "portal", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + self._timeout
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"the portal exited during start-up:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"the portal was not healthy in {self._timeout} s:\n{self.log()}"
                )
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> PortalProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

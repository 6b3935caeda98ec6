"""Process and port helpers for the local runner."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from lintas.exceptions import PrerequisiteMissing


def unprivileged_user(candidates: Sequence[str], *, server: str, hint: str) -> str | None:
    """The first existing user of ``candidates`` for ``server`` to run as when we are root;
    None (ourselves) when we are not.

    Raises:
        PrerequisiteMissing: we are root and none of them exists.
    """
    if os.geteuid() != 0:
        return None
    for name in candidates:
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise PrerequisiteMissing(f"an unprivileged user to run {server} as", hint=hint)


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on ``host:port`` and we may bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel says is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def choose_port(preferred: int, taken: set[int]) -> int:
    """``preferred`` when it is free (0 means any), otherwise a free port not in ``taken``."""
    if preferred and preferred not in taken and port_free(preferred):
        return preferred
    while True:
        port = free_port()
        if port not in taken:
            return port


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True when a GET of ``url`` answers 200."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def process_alive(pid: int | None, marker: str | None = None) -> bool:
    """True when ``pid`` runs and, if given, its command line contains ``marker``.

    The marker (the component's data path) guards against a stale pid file whose pid was
    reused by an unrelated process after a reboot.
    """
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return marker is None or marker in cmdline


def spawn(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> int:
    """Start ``argv`` detached from our session, its output appended to ``log_path``.

    The child gets its own session so Ctrl-C in the terminal that ran ``lintas up`` does not
    reach it; ``lintas down`` stops it by pid.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            user=user,
        )
    return proc.pid


def terminate(pid: int, *, timeout: float, marker: str | None = None) -> bool:
    """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL. True if it had to be killed."""
    if not process_alive(pid, marker):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if wait_exit(pid, timeout):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    wait_exit(pid, 10.0)
    return True


def wait_exit(pid: int, timeout: float) -> bool:
    """Wait for ``pid`` to exit (reaping it if it is our child). True when it is gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        if not process_alive(pid):
            return True
        time.sleep(0.1)
    return not process_alive(pid)


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file, or '' when there is none."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64_000))
            data = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])

"""A private MariaDB server, the stand-in for a legacy OPD application's database.

Capture adapters read MariaDB/MySQL through its binary log; the test harness and the capture
benchmark start a server of their own with :class:`MariaDBServer`, made from Debian's
``mariadb-server`` binaries (``scripts/install`` installs them; as root, missing binaries are
installed with apt on first use), on a free port, with the binary log configured as a
capture source needs it: ``log_bin``, ``binlog_format=ROW``, ``binlog_row_image=FULL``,
``binlog_row_metadata=FULL`` and a ``server_id``.

MariaDB runs as the ``mysql`` system user when we are root, so its files live under
``/var/lib/lintas/`` (root's home and pytest's temporary folders are closed to other users),
as the private PostgreSQL cluster's do. Bootstrap SQL runs through the ``mariadb`` client on
the server's socket as the database ``root`` (unix-socket authentication: only the OS user
that made the server may use it); everything else logs in over TCP as ``lintas`` with a
password kept in an owner-only file.

Usage::

    server = MariaDBServer(tmp_path / "mariadb")
    server.start()                       # initialises on first start, waits until ready
    dsn = server.dsn("simda")            # mysql://lintas:...@127.0.0.1:<port>/simda
    server.restart()                     # same port, same data
    server.stop()
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

from lintas.exceptions import ComponentFailed, PrerequisiteMissing

from ._process import (
    free_port,
    port_open,
    process_alive,
    spawn,
    tail,
    terminate,
    unprivileged_user,
    wait_exit,
)

__all__ = ["ADMIN_USER", "BINLOG_SETTINGS", "MariaDBServer", "ensure_binaries", "find_binaries"]

ADMIN_USER = "lintas"

BINLOG_SETTINGS = {
    "binlog_format": "ROW",
    "binlog_row_image": "FULL",
    "binlog_row_metadata": "FULL",
}
"""What a binlog capture source needs (besides ``log_bin`` and a ``server_id``)."""

_SERVER_SETTINGS = {
    **BINLOG_SETTINGS,
    "bind_address": "127.0.0.1",
    "skip_name_resolve": "ON",
    "character_set_server": "utf8mb4",
    "collation_server": "utf8mb4_unicode_ci",
    "default_time_zone": "'+00:00'",
    # A small machine shared with Kafka and PostgreSQL: small buffers, no
    # performance_schema. A private test server trades the durability of the last second of
    # commits on an OS crash for speed (flush at commit, fsync once a second).
    "innodb_buffer_pool_size": "64M",
    "innodb_log_file_size": "64M",
    "innodb_flush_log_at_trx_commit": "2",
    "performance_schema": "OFF",
    "max_connections": "200",
}


def find_binaries() -> tuple[Path, Path, Path] | None:
    """``(mariadbd, mariadb-install-db, mariadb)`` on this machine, or None."""
    server = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin:/usr/bin")
    install = shutil.which("mariadb-install-db")
    client = shutil.which("mariadb")
    if server and install and client:
        return Path(server), Path(install), Path(client)
    return None


def ensure_binaries() -> tuple[Path, Path, Path]:
    """The server binaries; installs Debian's ``mariadb-server`` when missing and we are root.

    Raises:
        PrerequisiteMissing: they are missing and cannot be installed here.
    """
    found = find_binaries()
    if found is not None:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for argv in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "mariadb-server"],
        ):
            result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
            if result.returncode != 0:
                raise PrerequisiteMissing(
                    "MariaDB server binaries",
                    hint=f"`{' '.join(argv)}` failed: {result.stderr.strip()[-300:]}",
                )
        found = find_binaries()
        if found is not None:
            return found
    raise PrerequisiteMissing(
        "MariaDB server binaries (mariadbd, mariadb-install-db, mariadb)",
        hint="Install them as root: `apt-get install -y mariadb-server` (scripts/install does).",
    )


def _run_as() -> str | None:
    """The system user the server runs as when we are root, else None (ourselves)."""
    return unprivileged_user(
        ("mysql", "nobody"),
        server="MariaDB",
        hint="Create the `mysql` system user (Debian's mariadb-server package does).",
    )


class MariaDBServer:
    """One private MariaDB server: its files, its process and its admin login.

    Args:
        data_dir: where it lives (linked to ``/var/lib/lintas/mariadb-<hash>`` when root).
        port: TCP port; 0 picks a free one at the first start and keeps it for restarts.
        server_id: the binary log's server id (a capture source needs one that is not 0).
    """

    def __init__(self, data_dir: Path, *, port: int = 0, server_id: int = 1) -> None:
        self.data_dir = data_dir
        self.port = port
        self.server_id = server_id
        self.user = _run_as()
        if self.user is not None:
            digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
            self.root = Path("/var/lib/lintas") / f"mariadb-{digest}"
        else:
            self.root = data_dir
        self.datadir = self.root / "data"
        self.binlog_dir = self.root / "binlog"
        self.run_dir = self.root / "run"
        self.socket = self.run_dir / "mariadb.sock"
        self.config = self.root / "my.cnf"
        self.log = self.root / "mariadb.log"
        self._password_file = data_dir / "admin.password"
        self.pid: int | None = None

    # -- files ---------------------------------------------------------------------------

    @property
    def initialised(self) -> bool:
        return (self.datadir / "mysql").is_dir()

    @property
    def password(self) -> str:
        """The admin login's password (made at the first start)."""
        if not self._password_file.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._password_file.write_text(secrets.token_urlsafe(18))
            self._password_file.chmod(0o600)
        return self._password_file.read_text().strip()

    def dsn(
        self, database: str = "", *, user: str = ADMIN_USER, password: str | None = None
    ) -> str:
        """``mysql://user:password@127.0.0.1:<port>/<database>``."""
        secret = self.password if password is None and user == ADMIN_USER else password or ""
        creds = f"{quote(user, safe='')}:{quote(secret, safe='')}" if secret else quote(user)
        return f"mysql://{creds}@127.0.0.1:{self.port}/{database}"

    def _chown(self, path: Path) -> None:
        if self.user is not None:
            info = pwd.getpwnam(self.user)
            os.chown(path, info.pw_uid, info.pw_gid)

    def _write_config(self) -> None:
        lines = ["# Written by lintas (deploy/local/mariadb.py) at every start.", "[mariadb]"]
        if self.user is not None:
            lines.append(f"user = {self.user}")
        lines += [
            f"datadir = {self.datadir}",
            f"socket = {self.socket}",
            f"pid_file = {self.run_dir / 'mariadb.pid'}",
            f"port = {self.port}",
            f"log_error = {self.log}",
            f"log_bin = {self.binlog_dir / 'mariadb-bin'}",
            f"server_id = {self.server_id}",
        ]
        lines += [f"{key} = {value}" for key, value in _SERVER_SETTINGS.items()]
        self.config.write_text("\n".join(lines) + "\n")
        self._chown(self.config)

    def _init(self, install_db: Path) -> None:
        for path in (self.root, self.datadir, self.binlog_dir, self.run_dir):
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o750)
            self._chown(path)
        self._write_config()
        argv = [
            str(install_db),
            f"--defaults-file={self.config}",
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
        ]
        if self.user is None:
            argv.append(f"--auth-root-socket-user={pwd.getpwuid(os.geteuid()).pw_name}")
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ComponentFailed(
                "mariadb", f"mariadb-install-db failed: {result.stderr.strip()[-500:]}"
            )

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return process_alive(self.pid, str(self.config))

    def start(self, timeout: float = 90.0) -> None:
        """Initialise on the first call, start the server and wait until it answers.

        Raises:
            PrerequisiteMissing: no MariaDB binaries and no way to install them.
            ComponentFailed: it did not become ready within ``timeout`` seconds.
        """
        if self.running:
            return
        server, install_db, client = ensure_binaries()
        if not self.port:
            self.port = free_port()
        if not self.initialised:
            self._init(install_db)
        self._write_config()
        self.socket.unlink(missing_ok=True)
        self.pid = spawn(
            [str(server), f"--defaults-file={self.config}"],
            log_path=self.data_dir / "mariadbd.out",
        )
        try:
            self._wait_ready(client, timeout)
            self._ensure_admin(client)
        except BaseException:
            self.stop()  # never leave a half-started server behind
            raise

    def _wait_ready(self, client: Path, timeout: float) -> None:
        assert self.pid is not None
        deadline = time.monotonic() + timeout
        while not (port_open(self.port) and self._sql(client, "SELECT 1", check=False) == 0):
            # Our own child: waitpid tells for sure whether it is still running.
            with contextlib.suppress(ChildProcessError):
                exited, _ = os.waitpid(self.pid, os.WNOHANG)
                if exited:
                    detail = tail(self.log, 15) or tail(self.data_dir / "mariadbd.out", 15)
                    raise ComponentFailed("mariadb", f"it exited at start:\n{detail}")
            if time.monotonic() > deadline:
                raise ComponentFailed(
                    "mariadb", f"not ready in {timeout:g} s:\n{tail(self.log, 15)}"
                )
            time.sleep(0.2)

    def stop(self, timeout: float = 60.0) -> None:
        """Shut down cleanly (SIGTERM), killing it if it does not stop in time."""
        if self.pid is not None:
            terminate(self.pid, timeout=timeout, marker=str(self.config))
        self.pid = None

    def kill(self) -> None:
        """SIGKILL: the server stops as in a power cut (InnoDB recovers at the next start)."""
        if self.pid is not None and self.running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, 9)
            wait_exit(self.pid, 30)
        self.pid = None

    def restart(self, timeout: float = 90.0) -> None:
        """Stop and start again on the same port, with the same data."""
        self.stop()
        self.start(timeout)

    def purge(self) -> None:
        """Stop and delete every file of this server."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    # -- SQL as the database root ------------------------------------------------------

    def execute(self, sql: str) -> None:
        """Run ``sql`` as the database root through the socket (bootstrap and tests).

        Raises:
            ComponentFailed: the statement failed.
        """
        found = find_binaries()
        if found is None:
            raise PrerequisiteMissing("the mariadb client", hint="apt-get install mariadb-client")
        self._sql(found[2], sql)

    def _sql(self, client: Path, sql: str, *, check: bool = True) -> int:
        result = subprocess.run(
            [str(client), f"--socket={self.socket}", "--user=root", "--batch", "-e", sql],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if check and result.returncode != 0:
            raise ComponentFailed("mariadb", f"SQL failed: {result.stderr.strip()[-500:]}")
        return result.returncode

    def _ensure_admin(self, client: Path) -> None:
        password = self.password.replace("'", "''")
        statements = []
        for host in ("127.0.0.1", "localhost"):
            who = f"'{ADMIN_USER}'@'{host}'"
            statements += [
                f"CREATE USER IF NOT EXISTS {who} IDENTIFIED BY '{password}'",
                f"GRANT ALL PRIVILEGES ON *.* TO {who} WITH GRANT OPTION",
            ]
        self._sql(client, "; ".join(statements))

"""PostgreSQL for the local stack: a private cluster made with ``initdb``.

The system's PostgreSQL binaries (Debian: ``/usr/lib/postgresql/<major>/bin``) make a
cluster of our own on a free port, with ``wal_level=logical`` for the capture adapters and
UTC storage. When Debian's ``postgresql-<major>-pgaudit`` is installed (``scripts/install``
and :func:`ensure_pgaudit` install it), the server preloads pgaudit, so analysts' SQL is
logged by the database itself; the logging collector writes ``<data_dir>/postgres/log/``
(``postgres.log``, and ``postgres.json`` whose pgaudit records the audit import reads).

PostgreSQL refuses to run as root, so when ``lintas up`` runs as root the
server runs as the ``postgres`` system user and its files live in ``/var/lib/lintas/``
(root's home is closed to other users); ``<data_dir>/postgres`` links to them, so the data
still sits under one data directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pwd
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

from lintas.exceptions import ComponentFailed, DataDirCorrupt, PrerequisiteMissing

from ._process import process_alive, tail, unprivileged_user

PG_USER = "lintas"
PG_DATABASE = "lintas"

SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "wal_level": "logical",
    "max_replication_slots": "16",
    "max_wal_senders": "16",
    # An abandoned replication slot must not fill the disk (capture adapters use slots).
    "max_slot_wal_keep_size": "'2GB'",
    "timezone": "'UTC'",
    "log_timezone": "'UTC'",
    "max_connections": "300",
    "shared_buffers": "'256MB'",
    "password_encryption": "'scram-sha-256'",
    # The collector writes each record whole, one JSON object per line in jsonlog: records
    # of concurrent sessions never interleave and a multi-line statement stays one record,
    # which the audit import (lintas.audit.pgaudit) relies on. Plain stderr logging
    # guarantees neither. The files have fixed names and are never rotated, as the stderr
    # file of earlier versions was not.
    "logging_collector": "on",
    "log_destination": "'stderr,jsonlog'",
    "log_filename": "'postgres.log'",
    "log_file_mode": "0600",
    "log_rotation_age": "0",
    "log_rotation_size": "0",
    "log_min_messages": "warning",
    "log_line_prefix": "'%m [%p] %u@%d '",
}

PGAUDIT_SETTINGS = {
    "shared_preload_libraries": "'pgaudit'",
    # Object audit: every read of what lintas_auditor may SELECT (the analytics views) is
    # logged, whoever reads; analysts' logins also get session audit, a role-level
    # pgaudit.log (lintas.audit_analyst_logins() in migration 0008).
    "pgaudit.role": "'lintas_auditor'",
    # DBeaver and Metabase read the catalogs constantly; those reads are not data access.
    "pgaudit.log_catalog": "off",
    "pgaudit.log_relation": "off",
}
"""What the server gets when pgaudit is installed (see :func:`find_pgaudit`)."""


def local_dsn(port: int, password: str, database: str = PG_DATABASE) -> str:
    """The DSN of the local cluster for the ``lintas`` role."""
    return f"postgresql://{PG_USER}:{quote(password, safe='')}@127.0.0.1:{port}/{database}"


def find_bindir() -> Path | None:
    """The newest PostgreSQL server binaries on this machine, or None."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def ensure_binaries(*, progress: bool = True) -> Path:
    """The server binaries; installs Debian's ``postgresql`` when missing and we are root."""
    bindir = find_bindir()
    if bindir is not None:
        return bindir
    if os.geteuid() == 0 and shutil.which("apt-get"):
        if progress:
            print("PostgreSQL server binaries are missing: installing Debian's postgresql ...")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for argv in (["apt-get", "update"], ["apt-get", "install", "-y", "postgresql"]):
            result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
            if result.returncode != 0:
                raise PrerequisiteMissing(
                    "PostgreSQL server binaries",
                    hint=f"`{' '.join(argv)}` failed: {result.stderr.strip()[-300:]}",
                )
        bindir = find_bindir()
        if bindir is not None:
            return bindir
    raise PrerequisiteMissing(
        "PostgreSQL server binaries (initdb, postgres)",
        hint="Install them as root: `apt-get install -y postgresql` (any version 13 or newer).",
    )


def pgaudit_package(bindir: Path) -> str:
    """Debian's pgaudit package for the server in ``bindir``: ``postgresql-15-pgaudit``."""
    major = bindir.parent.name
    return f"postgresql-{major if major.isdigit() else '<major>'}-pgaudit"


def find_pgaudit(bindir: Path) -> bool:
    """Whether the server in ``bindir`` can preload pgaudit (its library is installed).

    Preloading a library that is missing stops the server from starting, so the runner
    asks first.
    """
    # Debian's layout (/usr/lib/postgresql/15/lib), then a source build's (lib/postgresql).
    lib = bindir.parent / "lib"
    return (lib / "pgaudit.so").exists() or (lib / "postgresql" / "pgaudit.so").exists()


def ensure_pgaudit(bindir: Path) -> bool:
    """pgaudit for the server in ``bindir``; installs Debian's package when missing and we
    are root. Returns whether it is available (without it, analysts' own SQL is not logged
    by the database; the caller says so)."""
    if find_pgaudit(bindir):
        return True
    package = pgaudit_package(bindir)
    if os.geteuid() != 0 or not shutil.which("apt-get") or "<major>" in package:
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", package]
    # Without an update first: the package lists are usually fresh enough (and `apt-get
    # update` is slow); stale lists get one update and a second try.
    if subprocess.run(install, capture_output=True, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, env=env, check=False)
        subprocess.run(install, capture_output=True, env=env, check=False)
    return find_pgaudit(bindir)


def run_as_user() -> str | None:
    """The system user the server runs as when we are root, else None (ourselves)."""
    return unprivileged_user(
        ("postgres", "nobody"),
        server="PostgreSQL",
        hint="PostgreSQL refuses to run as root: create the `postgres` user, "
        "or run as another user.",
    )


class PostgresNode:
    """The files of one private PostgreSQL cluster."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.link = data_dir / "postgres"
        self.user = run_as_user()
        if self.user is not None:
            digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
            self.root = Path("/var/lib/lintas") / f"pg-{digest}"
        else:
            self.root = self.link
        self.pgdata = self.root / "data"
        self.socket_dir = self.root / "run"
        # What the server prints before its logging collector takes over (start-up errors).
        self.log = data_dir / "logs" / "postgres.log"
        # The collector's files, written as the server's user; through the link, they are
        # <data_dir>/postgres/log/ as well.
        self.log_dir = self.root / "log"
        self.server_log = self.log_dir / "postgres.log"
        self.jsonlog = self.log_dir / "postgres.json"

    @property
    def initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def _chown(self, path: Path) -> None:
        if self.user is not None:
            info = pwd.getpwnam(self.user)
            os.chown(path, info.pw_uid, info.pw_gid)

    def init(self, bindir: Path, password: str) -> None:
        """``initdb`` once: the ``lintas`` super-user with a password, UTF-8, UTC."""
        if self.initialised:
            return
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise DataDirCorrupt(str(self.pgdata), "it holds files but no PG_VERSION")
        for path in (self.root, self.pgdata, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o700)
            self._chown(path)
        if self.user is not None and not self.link.exists():
            self.link.parent.mkdir(parents=True, exist_ok=True)
            self.link.symlink_to(self.root)
        pwfile = self.root / ".initpw"
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o600)
        self._chown(pwfile)
        try:
            result = subprocess.run(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    PG_USER,
                    f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=peer",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-instructions",
                ],
                capture_output=True,
                text=True,
                user=self.user,
                check=False,
                cwd=self.root,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise ComponentFailed("postgres", f"initdb failed: {result.stderr.strip()[-500:]}")
        # Local socket connections only for the OS user that runs the server, mapped to
        # the lintas role; everyone else goes through TCP with a password.
        ident = self.pgdata / "pg_ident.conf"
        owner = self.user or pwd.getpwuid(os.geteuid()).pw_name
        ident.write_text(ident.read_text() + f"lintas {owner} {PG_USER}\n")
        hba = self.pgdata / "pg_hba.conf"
        hba.write_text(
            "# Written by `lintas up`.\n"
            "local all all peer map=lintas\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
            "host replication all 127.0.0.1/32 scram-sha-256\n"
        )
        conf = self.pgdata / "postgresql.conf"
        conf.write_text(conf.read_text() + "\ninclude_if_exists = 'lintas.conf'\n")

    def configure(self, port: int, *, pgaudit: bool = False) -> None:
        """Write the settings we own; the port may differ from the last start.

        Args:
            port: the port to listen on.
            pgaudit: preload pgaudit (only when :func:`find_pgaudit` says it is installed).
        """
        settings = dict(SERVER_SETTINGS)
        if pgaudit:
            settings.update(PGAUDIT_SETTINGS)
        settings["port"] = str(port)
        settings["unix_socket_directories"] = f"'{self.socket_dir}'"
        settings["log_directory"] = f"'{self.log_dir}'"
        self.log_dir.mkdir(mode=0o700, exist_ok=True)
        self._chown(self.log_dir)
        text = "# Written by `lintas up` at every start.\n" + "".join(
            f"{key} = {value}\n" for key, value in settings.items()
        )
        path = self.pgdata / "lintas.conf"
        path.write_text(text)
        self._chown(path)

    def clear_stale_lock(self) -> None:
        """Remove ``postmaster.pid`` when the process it names is not our server.

        After a reboot the pid may belong to an unrelated process, and PostgreSQL then
        refuses to start, although the cluster is not running.
        """
        lock = self.pgdata / "postmaster.pid"
        try:
            pid = int(lock.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return
        if not process_alive(pid, str(self.pgdata)):
            lock.unlink(missing_ok=True)

    def argv(self, bindir: Path) -> list[str]:
        return [str(bindir / "postgres"), "-D", str(self.pgdata)]

    def failure_detail(self) -> str:
        early = tail(self.log, 15)
        return early + ("\n" + tail(self.server_log, 15) if self.server_log.exists() else "")


async def postgres_ready(dsn: str, timeout: float) -> bool:
    """True when the server accepts our credential and answers a query."""
    import asyncpg

    try:
        conn = await asyncio.wait_for(asyncpg.connect(dsn, timeout=timeout), timeout + 1)
    except Exception:  # not ready yet: the caller retries or reports
        return False
    try:
        await conn.fetchval("SELECT 1")
        return True
    except Exception:
        return False
    finally:
        await conn.close()


async def ensure_database(admin_dsn: str, name: str = PG_DATABASE) -> None:
    """Create the ``lintas`` database on first start."""
    import asyncpg

    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}" OWNER {PG_USER}')
    finally:
        await conn.close()

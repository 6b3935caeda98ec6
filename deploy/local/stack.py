"""The local stack: Kafka, PostgreSQL and Lintas's services as processes on this machine.

``up`` is idempotent (a running component is found and left alone), survives a reboot's
leftovers (stale pids are checked against the process's command line, a taken port is
replaced by a free one and recorded), and reports what it did. ``down`` stops components
with SIGTERM, then SIGKILL after a timeout.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lintas.exceptions import ComponentFailed, DataDirCorrupt, StackError
from lintas.settings import KAFKA_VERSION, Settings

from . import kafka as kafka_rt
from . import postgres as pg_rt
from ._process import (
    choose_port,
    http_ok,
    port_open,
    process_alive,
    spawn,
    terminate,
    wait_exit,
)
from .services import SERVICES, KafkaLogin, ServiceSpec, service_environment
from .state import ComponentState, StackState

if TYPE_CHECKING:
    from lintas.security.tls import TlsFiles

Progress = Callable[[str], None]

# Stop order: services first (they hold clients), then the broker, then the database.
_STOP_ORDER_TAIL = ("kafka", "postgres")


@dataclass(frozen=True, kw_only=True)
class ComponentStatus:
    name: str
    running: bool
    healthy: bool
    address: str | None
    pid: int | None
    log: str | None
    detail: str = ""


def _secret(path: Path) -> str:
    """Read a generated secret, creating it (owner-only) on first use."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    value = kafka_rt.new_secret()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


class LocalStack:
    """The processes of one data directory."""

    def __init__(
        self,
        settings: Settings,
        *,
        progress: Progress | None = None,
        services: Collection[str] | None = None,
    ) -> None:
        """Args:
        settings: the stack's settings.
        progress: receives one line per step.
        services: which Lintas services ``up`` starts (names in ``SERVICES``); None starts
            all. The test harness starts only the registry: a session-wide worker or sink
            would consume the topics tests create and skew what they count.
        """
        self.services = None if services is None else frozenset(services)
        self.settings = settings
        self.local = settings.local
        self.data_dir = settings.data_dir.expanduser().resolve()
        self.secrets = self.data_dir / "secrets"
        self.progress: Progress = progress or (lambda msg: None)
        self.kafka_node = kafka_rt.KafkaNode(
            self.data_dir, fast_test_profile=self.local.fast_test_profile
        )

    # -- state ---------------------------------------------------------------------------

    def load_state(self) -> StackState:
        return StackState.load(self.data_dir) or StackState(data_dir=str(self.data_dir))

    def _taken_ports(self, state: StackState, *, besides: str) -> set[int]:
        taken: set[int] = set()
        for name, comp in state.components.items():
            if name != besides:
                taken.update(comp.ports.values())
                if comp.port:
                    taken.add(comp.port)
        return taken

    def _port(self, state: StackState, comp: str, key: str, preferred: int) -> int:
        previous = state.components.get(comp)
        last = previous.ports.get(key) if previous else None
        return choose_port(last or preferred, self._taken_ports(state, besides=comp))

    # -- up ------------------------------------------------------------------------------

    def up(self) -> StackState:
        """Start whatever is not running; returns the state with every address."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        state = self.load_state()
        state.data_dir = str(self.data_dir)
        self._up_postgres(state)
        state.save()
        self._up_kafka(state)
        state.save()
        from lintas.migrate import migrate

        applied = asyncio.run(migrate(self.admin_dsn(state)))
        if applied:
            self.progress(
                f"database: applied migrations {', '.join(str(m.version) for m in applied)}"
            )
        self._sync_topics(state)
        self._publish_directory()
        self._sync_security()
        self._portal_admin(state)
        for spec in SERVICES:
            if self.services is not None and spec.name not in self.services:
                continue
            self._up_service(state, spec)
            state.save()
        if "registry" in state.components:
            self._register_catalog(state)
        return state

    def up_kafka(self) -> StackState:
        """Start Kafka alone, if it is not running (tests of the broker's listeners)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        state = self.load_state()
        state.data_dir = str(self.data_dir)
        self._up_kafka(state)
        state.save()
        return state

    def up_postgres(self) -> StackState:
        """Start PostgreSQL alone, if it is not running (tests that restart the database)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        state = self.load_state()
        state.data_dir = str(self.data_dir)
        self._up_postgres(state)
        state.save()
        return state

    def _register_catalog(self, state: StackState) -> None:
        """Register the catalog's schemas so producers can look their ids up."""
        from lintas.schemas import load_catalog
        from lintas.schemas.publish import CheckOutcome, register_catalog
        from lintas.schemas.registry import SchemaRegistryClient

        url = state.components["registry"].url
        assert url is not None

        async def run() -> list[Any]:
            async with SchemaRegistryClient(url) as client:
                return await register_catalog(client, load_catalog())

        checks = asyncio.run(run())
        bad = [c for c in checks if c.outcome is CheckOutcome.INCOMPATIBLE]
        if bad:
            names = ", ".join(c.event_type.subject for c in bad)
            self.progress(f"registry: NOT registered, incompatible: {names} (lintas schemas check)")
            return
        new = [c for c in checks if c.outcome is not CheckOutcome.UNCHANGED]
        if new:
            self.progress(f"registry: registered {len(new)} catalog schemas")

    def _portal_admin(self, state: StackState) -> None:
        """Create the portal's first operator once, and say where its password is."""
        from lintas.portal.bootstrap import ADMIN_NAME, admin_password_file, ensure_admin

        created = asyncio.run(ensure_admin(self.admin_dsn(state), self.data_dir))
        path = admin_password_file(self.data_dir)
        if created is not None:
            self.progress(f"portal: created operator {ADMIN_NAME!r}; its password is in {path}")
        elif path.exists():
            self.progress(f"portal: sign in as {ADMIN_NAME!r} with the password in {path}")

    def _publish_directory(self) -> None:
        """Send directory changes committed while Kafka was down (the outbox)."""
        from lintas.directory import Directory

        async def run() -> int:
            async with await Directory.open(self.settings) as directory:
                return await directory.publish_pending()

        published = asyncio.run(run())
        if published:
            self.progress(f"directory: published {published} pending change(s)")

    def _sync_security(self) -> None:
        """Principals and ACLs for the directory's applications and subscribers and the
        platform services (whose passwords go to owner-only files, never to the log)."""
        from lintas.endpoints import resolve_endpoints
        from lintas.security import SecurityContext, load_directory, sync_security

        ctx = SecurityContext.from_settings(self.settings)
        data = asyncio.run(load_directory(self.settings))
        plan = sync_security(ctx, resolve_endpoints(self.settings).kafka, data)
        if not plan.empty:
            self.progress(
                f"security: {len(plan.acls.add)} ACL(s) added, {len(plan.acls.remove)} removed, "
                f"{len(plan.service_credentials)} service credential(s) set "
                "(lintas security sync --dry-run)"
            )
        if plan.missing_credentials:
            self.progress(
                f"security: {len(plan.missing_credentials)} principal(s) without a password: "
                "issue one with `lintas apps kafka-password` / `lintas subscribers kafka-password`"
            )

    def _sync_topics(self, state: StackState) -> None:
        from lintas.endpoints import resolve_endpoints
        from lintas.topics import Action, directory_subscribers, platform_topics, sync_topics

        conn = resolve_endpoints(self.settings).kafka
        subscribers = asyncio.run(directory_subscribers(self.settings))
        specs = platform_topics(self.settings.kafka, subscribers=subscribers)
        plan = asyncio.run(sync_topics(conn, specs))
        created = [c for c in plan if c.action is Action.CREATE]
        if created:
            self.progress(f"kafka: created {len(created)} topics (lintas topics list)")

    def _running(self, state: StackState, name: str) -> bool:
        comp = state.components.get(name)
        return bool(comp and process_alive(comp.pid, comp.marker))

    def _wait_ready(
        self, name: str, pid: int, check: Callable[[], bool], detail: Callable[[], str]
    ) -> float:
        start = time.monotonic()
        deadline = start + self.local.start_timeout_s
        while time.monotonic() < deadline:
            if not process_alive(pid):
                wait_exit(pid, 1)
                raise ComponentFailed(name, "the process exited during start-up:\n" + detail())
            if check():
                return time.monotonic() - start
            time.sleep(0.25)
        raise ComponentFailed(
            name, f"not ready after {self.local.start_timeout_s:.0f} s:\n" + detail()
        )

    def _up_kafka(self, state: StackState) -> None:
        node = self.kafka_node
        if self._running(state, "kafka"):
            self.progress(f"kafka: already running on {state.components['kafka'].port}")
            return
        java = kafka_rt.check_java()
        if not (kafka_rt.jar_dir(self.settings.cache_dir) / ".complete").exists():
            self.progress(
                f"kafka: fetching Apache Kafka {KAFKA_VERSION} jars from Maven Central (once) ..."
            )
        libs = kafka_rt.ensure_jars(self.settings.cache_dir)
        port = self._port(state, "kafka", "client", self.local.kafka_port)
        cport = self._port(state, "kafka", "controller", self.local.kafka_controller_port)
        if cport == port:
            cport = choose_port(0, {port})
        tport = self._port(state, "kafka", "tls", self.local.kafka_tls_port)
        while tport in (port, cport):
            tport = choose_port(0, {port, cport})
        tls = self._local_tls()
        password = _secret(self.secrets / "kafka-platform.password")
        node.render(
            port=port,
            controller_port=cport,
            controller_password=_secret(self.secrets / "kafka-controller.password"),
            platform_password=password,
            tls_port=tport,
            tls_keystore=tls.broker_keystore,
        )
        node.format(java, libs, platform_password=password)
        node.logs.mkdir(parents=True, exist_ok=True)
        pid = spawn(node.argv(java, libs, self.local.kafka_heap), log_path=node.logs / "stdout.log")
        comp = ComponentState(
            name="kafka",
            pid=pid,
            port=port,
            ports={"client": port, "controller": cport, "tls": tport},
            marker=str(node.config),
            log=str(node.logs / "server.log"),
        )
        state.components["kafka"] = comp
        state.kafka_user = kafka_rt.PLATFORM_USER
        state.kafka_password_file = str(self.secrets / "kafka-platform.password")
        state.kafka_ca_file = str(tls.ca_cert)
        state.save()
        bootstrap = f"127.0.0.1:{port}"

        def ready() -> bool:
            return port_open(port) and asyncio.run(
                kafka_rt.kafka_ready(bootstrap, kafka_rt.PLATFORM_USER, password, 5)
            )

        def detail() -> str:
            text = node.failure_detail()
            if "CorruptRecordException" in text or "InconsistentClusterIdException" in text:
                raise DataDirCorrupt(str(node.log_dirs), "Kafka reports corrupt or foreign data")
            return text

        comp.started_s = round(self._wait_ready("kafka", pid, ready, detail), 2)
        self.progress(
            f"kafka: ready on {bootstrap} in {comp.started_s:.1f} s "
            f"(Kafka {KAFKA_VERSION}, KRaft, SASL/SCRAM-SHA-512); "
            f"TLS on 127.0.0.1:{tport} (CA: {tls.ca_cert})"
        )

    def _local_tls(self) -> TlsFiles:
        """The local CA and the broker certificate, made on first use and renewed when due."""
        from lintas.security.tls import ensure_local_tls

        sec = self.settings.security
        made = ensure_local_tls(
            self.secrets / "tls",
            ca_days=sec.ca_valid_days,
            cert_days=sec.broker_cert_valid_days,
        )
        if made.made_ca:
            self.progress(f"kafka: made a local CA for the TLS listener: {made.files.ca_cert}")
        elif made.made_broker_cert:
            self.progress("kafka: made a new broker certificate (the CA is unchanged)")
        return made.files

    def _up_postgres(self, state: StackState) -> None:
        if self._running(state, "postgres"):
            self.progress(f"postgres: already running on {state.components['postgres'].port}")
            return
        bindir = pg_rt.ensure_binaries()
        pgaudit = pg_rt.ensure_pgaudit(bindir)
        if not pgaudit:
            self.progress(
                f"postgres: pgaudit is not installed ({pg_rt.pgaudit_package(bindir)}): "
                "analysts' own SQL is not logged by the database (scripts/install adds it)"
            )
        node = pg_rt.PostgresNode(self.data_dir)
        password = _secret(self.secrets / "postgres.password")
        node.init(bindir, password)
        port = self._port(state, "postgres", "client", self.local.pg_port)
        node.configure(port, pgaudit=pgaudit)
        node.clear_stale_lock()
        node.log.parent.mkdir(parents=True, exist_ok=True)
        pid = spawn(node.argv(bindir), log_path=node.log, user=node.user, cwd=node.root)
        comp = ComponentState(
            name="postgres",
            pid=pid,
            port=port,
            ports={"client": port},
            marker=str(node.pgdata),
            log=str(node.server_log),
        )
        state.components["postgres"] = comp
        state.pg_user = pg_rt.PG_USER
        state.pg_passfile = str(self.secrets / "postgres.password")
        state.pg_dir = str(node.root)
        state.save()
        admin = pg_rt.local_dsn(port, password, "postgres")

        def ready() -> bool:
            return port_open(port) and asyncio.run(pg_rt.postgres_ready(admin, 3))

        comp.started_s = round(self._wait_ready("postgres", pid, ready, node.failure_detail), 2)
        asyncio.run(pg_rt.ensure_database(admin))
        self.progress(f"postgres: ready on 127.0.0.1:{port} in {comp.started_s:.1f} s")

    def _up_service(self, state: StackState, spec: ServiceSpec) -> None:
        if self._running(state, spec.name):
            self.progress(f"{spec.name}: already running")
            return
        preferred = getattr(self.local, spec.port_setting) if spec.port_setting else 0
        port = self._port(state, spec.name, "http", preferred) if spec.port_setting else None
        # --data-dir in the command line doubles as the marker that proves a pid is ours.
        argv = [sys.executable, "-m", "lintas.cli", "--data-dir", str(self.data_dir)]
        argv += [a.replace("{port}", str(port)) for a in spec.command]
        log = self.data_dir / "logs" / f"{spec.name}.log"
        env = service_environment(
            os.environ, self.settings, data_dir=self.data_dir, login=self._service_login(spec)
        )
        pid = spawn(argv, log_path=log, env=env)
        comp = ComponentState(
            name=spec.name,
            pid=pid,
            port=port,
            ports={"http": port} if port else {},
            marker=str(self.data_dir),
            log=str(log),
        )
        state.components[spec.name] = comp
        state.save()

        def ready() -> bool:
            return comp.url is None or http_ok(comp.url + spec.health_path)

        from ._process import tail

        comp.started_s = round(self._wait_ready(spec.name, pid, ready, lambda: tail(log)), 2)
        where = f" on {comp.url}" if comp.url else ""
        self.progress(f"{spec.name}: ready{where} in {comp.started_s:.1f} s")

    def _service_login(self, spec: ServiceSpec) -> KafkaLogin | None:
        """The service's own principal and password file (written by ``_sync_security``)."""
        if spec.kafka_role is None:
            return None
        from lintas.security import SecurityContext
        from lintas.security.reconcile import service_password_file

        ctx = SecurityContext.from_settings(self.settings)
        user = ctx.names.service(spec.kafka_role)
        path = service_password_file(ctx.password_dir, user)
        if not path.is_file():
            raise ComponentFailed(
                spec.name,
                f"the password file of its Kafka principal {user} is missing ({path}); "
                "`lintas security sync` writes it",
            )
        return KafkaLogin(user=user, password_file=path)

    # -- addresses -----------------------------------------------------------------------

    def admin_dsn(self, state: StackState) -> str:
        comp = state.components.get("postgres")
        if comp is None or comp.port is None:
            raise StackError("PostgreSQL is not part of this stack.", hint="Run `lintas up`.")
        return pg_rt.local_dsn(comp.port, _secret(self.secrets / "postgres.password"))

    # -- down ----------------------------------------------------------------------------

    def down(
        self, *, purge: bool = False, only: str | None = None, immediate: bool = False
    ) -> list[str]:
        """Stop components (all, or ``only``); with ``purge`` delete the data as well.

        ``immediate`` stops PostgreSQL in immediate mode, as a crash would: no checkpoint,
        crash recovery at the next start (fault tests).
        """
        state = StackState.load(self.data_dir)
        stopped: list[str] = []
        if state is not None:
            names = [n for n in state.components if n not in _STOP_ORDER_TAIL]
            names += [n for n in _STOP_ORDER_TAIL if n in state.components]
            for name in names:
                if only is not None and name != only:
                    continue
                comp = state.components[name]
                if comp.pid and process_alive(comp.pid, comp.marker):
                    self.progress(f"{name}: stopping (pid {comp.pid}) ...")
                    if name == "postgres":
                        # SIGINT is PostgreSQL's fast shutdown, SIGQUIT its immediate one;
                        # SIGTERM would wait for clients.
                        os.kill(comp.pid, signal.SIGQUIT if immediate else signal.SIGINT)
                    killed = terminate(
                        comp.pid, timeout=self.local.stop_timeout_s, marker=comp.marker
                    )
                    self.progress(f"{name}: {'killed after timeout' if killed else 'stopped'}")
                    stopped.append(name)
                comp.pid = None
            state.save()
        if purge and only is None:
            pg_dir = state.pg_dir if state else None
            if pg_dir and Path(pg_dir) != self.data_dir / "postgres":
                shutil.rmtree(pg_dir, ignore_errors=True)
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.progress(f"deleted {self.data_dir}")
        return stopped

    # -- status --------------------------------------------------------------------------

    def status(self) -> tuple[list[ComponentStatus], dict[str, Any]]:
        """Each component's health, and the addresses as ``lintas status --json`` prints them."""
        state = StackState.load(self.data_dir)
        if state is None:
            return [], {"data_dir": str(self.data_dir), "running": False}
        rows: list[ComponentStatus] = []
        for name, comp in state.components.items():
            running = process_alive(comp.pid, comp.marker)
            healthy = running and bool(comp.port is None or port_open(comp.port))
            detail = ""
            if running and healthy and name == "kafka" and comp.port and state.kafka_password_file:
                password = Path(state.kafka_password_file).read_text().strip()
                healthy = asyncio.run(
                    kafka_rt.kafka_ready(comp.address or "", state.kafka_user or "", password, 5)
                )
                detail = "" if healthy else "broker does not answer metadata requests"
            rows.append(
                ComponentStatus(
                    name=name,
                    running=running,
                    healthy=healthy,
                    address=comp.address,
                    pid=comp.pid if running else None,
                    log=comp.log,
                    detail=detail,
                )
            )
        doc: dict[str, Any] = {"data_dir": str(self.data_dir)}
        kafka = state.components.get("kafka")
        pg = state.components.get("postgres")
        doc["kafka_bootstrap"] = kafka.address if kafka else None
        doc["kafka_security"] = {
            "security_protocol": "SASL_PLAINTEXT",
            "mechanism": "SCRAM-SHA-512",
            "username": state.kafka_user,
            "password_file": state.kafka_password_file,
        }
        tls_port = kafka.ports.get("tls") if kafka else None
        doc["kafka_bootstrap_tls"] = f"127.0.0.1:{tls_port}" if tls_port else None
        doc["kafka_ca_file"] = state.kafka_ca_file if tls_port else None
        doc["kafka_version"] = KAFKA_VERSION
        if pg and pg.port and state.pg_passfile:
            doc["pg_dsn"] = pg_rt.local_dsn(pg.port, Path(state.pg_passfile).read_text().strip())
        else:
            doc["pg_dsn"] = None
        for key, name in (
            ("registry_url", "registry"),
            ("gateway_url", "gateway"),
            ("portal_url", "portal"),
        ):
            service = state.components.get(name)
            doc[key] = service.url if service else None
        doc["components"] = {
            r.name: {"running": r.running, "healthy": r.healthy, "address": r.address, "pid": r.pid}
            for r in rows
        }
        doc["running"] = all(r.running and r.healthy for r in rows) and bool(rows)
        return rows, doc

    def log_path(self, component: str) -> Path:
        state = StackState.load(self.data_dir)
        comp = state.components.get(component) if state else None
        if comp is None or comp.log is None:
            known = ", ".join(state.components) if state else "none (run `lintas up`)"
            raise StackError(f"No component named {component!r}.", hint=f"Known: {known}.")
        return Path(comp.log)

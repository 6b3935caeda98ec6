"""Where the running parts are: configured addresses first, then the local stack's state.

Every entry point resolves :class:`Endpoints` once from the settings; with no address
configured, the local stack started by ``lintas up`` is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lintas.exceptions import ConfigurationError, StackError
from lintas.kafka import KafkaConnection
from lintas.settings import KafkaSecurityProtocol, Settings

if TYPE_CHECKING:
    from lintas.deploy.local.state import StackState

__all__ = ["Endpoints", "kafka_connection", "postgres_dsn", "registry_url", "resolve_endpoints"]


@dataclass(frozen=True, kw_only=True)
class Endpoints:
    kafka: KafkaConnection
    kafka_password_file: str | None
    pg_dsn: str
    registry_url: str | None = None
    gateway_url: str | None = None
    portal_url: str | None = None


def _read_secret(path: Path, field: str) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise ConfigurationError(field, f"cannot read {path}: {exc.strerror}") from exc


def registry_url(settings: Settings) -> str | None:
    """The schema registry's URL: configured, else the local stack's, else None.

    Needs neither Kafka nor PostgreSQL, so registry-only commands work without them.
    """
    if settings.registry_url:
        return settings.registry_url
    from lintas.deploy.local.state import StackState

    state = StackState.load(settings.data_dir)
    comp = state.components.get("registry") if state else None
    return comp.url if comp else None


def kafka_connection(settings: Settings) -> KafkaConnection:
    """Kafka's address and credentials alone: what a producer in an OPD app needs.

    Unlike :func:`resolve_endpoints` it needs no PostgreSQL address.

    Raises:
        StackError: no Kafka address is configured and no local stack has been started.
        ConfigurationError: a configured credential cannot be read.
    """
    from lintas.deploy.local.state import StackState

    return _kafka(settings, StackState.load(settings.data_dir))[0]


def postgres_dsn(settings: Settings) -> str:
    """PostgreSQL's address alone: configured, else the local stack's.

    Unlike :func:`resolve_endpoints` it reads no Kafka credential, so a service without
    Kafka (the schema registry) never touches the platform's.

    Raises:
        StackError: no PostgreSQL address is configured and no local stack has been started.
        ConfigurationError: the local stack's password file cannot be read.
    """
    from lintas.deploy.local.state import StackState

    if settings.pg_dsn is not None:
        return settings.pg_dsn
    return _postgres(StackState.load(settings.data_dir))


def _postgres(state: StackState | None) -> str:
    from lintas.deploy.local.postgres import local_dsn

    pg = state.components.get("postgres") if state else None
    if pg is None or pg.port is None or state is None or state.pg_passfile is None:
        raise StackError(
            "No PostgreSQL address is configured and no local stack is running.",
            hint="Run `lintas up`, or set LINTAS_PG_DSN.",
        )
    return local_dsn(pg.port, _read_secret(Path(state.pg_passfile), "LINTAS_PG_DSN"))


def _kafka(settings: Settings, state: StackState | None) -> tuple[KafkaConnection, str | None]:
    comps = state.components if state else {}
    k = settings.kafka
    tls = k.security_protocol is KafkaSecurityProtocol.SASL_SSL
    bootstrap = settings.kafka_bootstrap
    cafile = str(k.ssl_cafile) if k.ssl_cafile else None
    if bootstrap is None:
        kafka = comps.get("kafka")
        if kafka is None or kafka.address is None:
            raise StackError(
                "No Kafka address is configured and no local stack is running.",
                hint="Run `lintas up`, or set LINTAS_KAFKA_BOOTSTRAP (and LINTAS_PG_DSN).",
            )
        bootstrap = kafka.address
        if tls:
            # SASL_SSL against the local stack: its TLS listener, trusting its local CA.
            tls_port = kafka.ports.get("tls")
            if tls_port is None:
                raise StackError(
                    "The local broker has no TLS listener (it was started by an older Lintas).",
                    hint="Restart it: `lintas down --only kafka` then `lintas up`.",
                )
            bootstrap = f"127.0.0.1:{tls_port}"
            cafile = cafile or (state.kafka_ca_file if state else None)

    username = k.username or (state.kafka_user if state else None)
    password_file = str(k.password_file) if k.password_file else None
    if k.password is not None:
        password = k.password.get_secret_value()
    else:
        password_file = password_file or (state.kafka_password_file if state else None)
        if password_file is None or username is None:
            raise ConfigurationError(
                "LINTAS_KAFKA__USERNAME",
                "a SASL username and password (or LINTAS_KAFKA__PASSWORD_FILE) are required",
            )
        password = _read_secret(Path(password_file), "LINTAS_KAFKA__PASSWORD_FILE")
    if username is None:
        raise ConfigurationError("LINTAS_KAFKA__USERNAME", "a SASL username is required")
    conn = KafkaConnection(
        bootstrap=bootstrap,
        username=username,
        password=password,
        security_protocol=k.security_protocol.value,
        sasl_mechanism=k.sasl_mechanism.value,
        ssl_cafile=cafile,
        client_id=k.client_id,
    )
    return conn, password_file


def resolve_endpoints(settings: Settings) -> Endpoints:
    """Addresses and credentials of Kafka, PostgreSQL and the Lintas services.

    Raises:
        StackError: nothing is configured and no local stack has been started.
        ConfigurationError: a configured credential cannot be read.
    """
    from lintas.deploy.local.state import StackState

    state = StackState.load(settings.data_dir)
    comps = state.components if state else {}

    def url(name: str) -> str | None:
        comp = comps.get(name)
        return comp.url if comp else None

    kafka, password_file = _kafka(settings, state)
    pg_dsn = settings.pg_dsn if settings.pg_dsn is not None else _postgres(state)

    return Endpoints(
        kafka=kafka,
        kafka_password_file=password_file,
        pg_dsn=pg_dsn,
        registry_url=registry_url(settings),
        gateway_url=url("gateway"),
        portal_url=url("portal"),
    )

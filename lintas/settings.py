"""The one settings model of Lintas.

Read once, at an entry point (the CLI, a service's ``main``), from environment variables
prefixed ``LINTAS_``; libraries receive the frozen model and never read the environment.

Usage::

    settings = Settings()                      # LINTAS_* from the environment
    settings = Settings(kafka_bootstrap="kafka-1:9092", pg_dsn="postgresql://...")

The common addresses are flat (``LINTAS_KAFKA_BOOTSTRAP``, ``LINTAS_PG_DSN``); deeper
settings nest with ``__`` (``LINTAS_KAFKA__PARTITIONS=6``, ``LINTAS_LOCAL__KAFKA_PORT=19092``).
Everything has a local default, so ``lintas up`` needs no configuration at all: when no
address is given, components find the local stack through its state file in ``data_dir``.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from lintas.exceptions import ConfigurationError

__all__ = [
    "AuditSettings",
    "CaptureSettings",
    "DeliverSettings",
    "DirectorySettings",
    "GatewaySettings",
    "KafkaSecurityProtocol",
    "KafkaSettings",
    "LocalStackSettings",
    "PortalSettings",
    "ProducerSettings",
    "RetentionSettings",
    "SaslMechanism",
    "SecuritySettings",
    "Settings",
    "SinkSettings",
    "StoreRetentionAction",
    "StreamsSettings",
    "TypeRetention",
    "default_cache_dir",
    "default_data_dir",
    "load_settings",
]

KAFKA_VERSION = "4.3.1"


def default_data_dir() -> Path:
    """Where the local stack keeps data and logs: ``$XDG_DATA_HOME/lintas``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "lintas"


def default_cache_dir() -> Path:
    """Where downloaded jars are cached: ``$XDG_CACHE_HOME/lintas``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lintas"


class KafkaSecurityProtocol(StrEnum):
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


class SaslMechanism(StrEnum):
    SCRAM_SHA_512 = "SCRAM-SHA-512"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    PLAIN = "PLAIN"
    """Only for brokers without SCRAM bootstrap (the docker-compose and testcontainers broker)."""


Port = Annotated[int, Field(ge=0, le=65535)]


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KafkaSettings(_Group):
    """How platform clients reach and use Kafka.

    The password comes from ``password`` or, preferably, ``password_file`` (a file readable
    by its owner only, as the local stack writes it). When both are unset and the local
    stack runs, its platform credential is used.
    """

    security_protocol: KafkaSecurityProtocol = KafkaSecurityProtocol.SASL_PLAINTEXT
    sasl_mechanism: SaslMechanism = SaslMechanism.SCRAM_SHA_512
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    ssl_cafile: Path | None = None
    client_id: str = "lintas"
    partitions: Annotated[int, Field(ge=1, le=1000)] = 3
    """Platform partition count: every topic Lintas creates gets this many partitions."""
    replication_factor: Annotated[int, Field(ge=1, le=10)] = 1
    min_insync_replicas: Annotated[int, Field(ge=1, le=10)] = 1
    request_timeout_ms: Annotated[int, Field(ge=1000)] = 30_000
    retention_days: Annotated[float, Field(gt=0, le=3650)] = 7
    """Retention of OPD and canonical topics unless an event type sets ``retention_days``."""
    dlq_retention_days: Annotated[float, Field(gt=0, le=30)] = 30
    """Dead letters hold personal data too: 30 days at most (UU PDP retention)."""


class LocalStackSettings(_Group):
    """The local runner (``lintas up``): preferred ports; taken ones are replaced by free ones."""

    kafka_port: Port = 9092
    kafka_controller_port: Port = 9093
    kafka_tls_port: Port = 9094
    """The broker's second client listener: SASL_SSL, with a certificate of the local CA."""
    pg_port: Port = 5432
    registry_port: Port = 8081
    gateway_port: Port = 8080
    portal_port: Port = 8000
    kafka_heap: str = "768m"
    start_timeout_s: Annotated[float, Field(gt=0, le=600)] = 90.0
    stop_timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    fast_test_profile: bool = False
    """Short session timeouts and no initial rebalance delay: for test runs on small machines."""


class ProducerSettings(_Group):
    """The producer SDK and its store-and-forward spool (``lintas.producers``)."""

    spool_dir: Path | None = None
    """Where spools live; unset means ``<data_dir>/spool``. One spool per producer name."""
    spool_max_bytes: Annotated[int, Field(ge=1024 * 1024)] = 1024**3
    """Bound of one spool; a full spool makes ``send`` raise ``SpoolFull``."""
    send_timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    """A send not acknowledged within this goes to the spool."""
    start_timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    """Connecting at start waits this long; an unreachable broker means starting offline."""
    stop_timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    """Stopping flushes for at most this long; what is not acknowledged by then is spooled."""
    linger_ms: Annotated[int, Field(ge=0, le=1000)] = 5
    """How long a batch waits for more records before it is sent (Kafka's ``linger.ms``)."""
    batch_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 256 * 1024
    """Largest record batch per partition (Kafka's ``batch.size``); bigger batches mean fewer
    round trips when an app sends many events at once."""


class GatewaySettings(_Group):
    """The HTTP ingest gateway (``lintas gateway``, :mod:`lintas.producers.gateway`).

    Usage::

        LINTAS_GATEWAY__RATE_LIMIT_PER_S=200 LINTAS_GATEWAY__MAX_BODY_BYTES=2097152 lintas gateway
    """

    max_body_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 8 * 1024 * 1024
    """A larger request body is refused with 413. A full batch of 1,000 catalog events is
    well under 2 MiB of JSON."""
    max_batch_events: Annotated[int, Field(ge=1, le=10_000)] = 1000
    """Most events in one batch request."""
    request_timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    """Reading the body and handing the events over must finish within this; a request
    that does not gets 408 (body too slow) or 503 (events not yet acknowledged or spooled,
    retry with the same Idempotency-Key). Keep it above ``producer.send_timeout_s``."""
    rate_limit_per_s: Annotated[float, Field(gt=0, le=1_000_000)] = 2000.0
    """Events per second one application may publish through one gateway process."""
    rate_limit_burst: Annotated[int, Field(ge=1, le=10_000_000)] = 5000
    """Events an application may publish at once above the rate (the token bucket's size);
    at least ``max_batch_events`` so a full batch can pass."""
    idempotency_ttl_s: Annotated[int, Field(ge=60, le=30 * 86_400)] = 86_400
    """How long an Idempotency-Key (or CloudEvents id) is remembered: a retry within this
    gets the first answer and publishes nothing new."""
    retry_after_s: Annotated[int, Field(ge=1, le=3600)] = 5
    """``Retry-After`` sent with 503 answers (spool full, registry or database away)."""
    key_touch_interval_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    """How often the last use of API keys is written to the directory (batched, not per
    request)."""
    directory_topic: str = "lintas.directory"
    """The directory topic API keys are verified from (tests give each their own)."""
    spool_name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")] = "gateway"
    """Name of the gateway's producer spool (``lintas spool status`` lists it)."""

    @model_validator(mode="after")
    def _burst_fits_a_batch(self) -> GatewaySettings:
        if self.rate_limit_burst < self.max_batch_events:
            raise ValueError(
                f"rate_limit_burst ({self.rate_limit_burst}) must be at least max_batch_events "
                f"({self.max_batch_events}), or a full batch could never pass"
            )
        return self


class DirectorySettings(_Group):
    """The directory of OPDs, applications, subscribers and subscriptions (``lintas.directory``)."""

    pemda_name: str = "Pemerintah Kota Bandung"
    """The Pemda this platform serves; OPDs added without one belong to it."""
    pemda_code: str = "32.73"
    """Kemendagri region code of the Pemda (``32.73`` Kota Bandung)."""
    integrated_window_days: Annotated[int, Field(ge=1, le=365)] = 30
    """An application is integrated when it produced or received an event this recently."""
    secret_key_file: Path | None = None
    """Key that encrypts webhook signing secrets at rest; unset means
    ``<data_dir>/secrets/directory.key`` (created on first use)."""


class PortalSettings(_Group):
    """The portal (``lintas portal``): sign-in sessions, language, refresh."""

    session_max_age_s: Annotated[int, Field(ge=60, le=7 * 24 * 3600)] = 8 * 3600
    """A session ends after this long without a request (the cookie is re-signed on each)."""
    session_secret_file: Path | None = None
    """Key that signs session cookies; unset means ``<data_dir>/secrets/portal-session.key``
    (created on first use). Every portal instance behind one address needs the same key."""
    secure_cookies: bool = False
    """Send the session cookie over HTTPS only: turn on behind a TLS proxy in production."""
    default_language: Literal["id", "en"] = "id"
    """Language of the pages until a user switches (Bahasa Indonesia by default)."""
    refresh_s: Annotated[float, Field(ge=1, le=600)] = 5.0
    """How often the dashboard asks for new figures."""
    directory_topic: str = "lintas.directory"
    """Where directory changes made in the portal are published (tests give each their own)."""
    metrics_topic: str = "lintas.metrics"
    """The stream workers' one-minute counts the dashboard reads."""
    dlq_topic: str = "lintas.dlq"
    """The dead-letter topic whose reasons the dashboard counts."""


class StreamsSettings(_Group):
    """The stream workers (``lintas worker``, :mod:`lintas.streams`).

    Usage::

        LINTAS_STREAMS__DEDUP_HORIZON_DAYS=14 lintas worker
    """

    app_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")] = "lintas-streams"
    """Consumer group of the workers and prefix of their internal topics (the dedup changelog)."""
    topic_prefix: Annotated[str, Field(pattern=r"^([a-z0-9][a-z0-9_-]*\.)?$")] = ""
    """Put before every topic the workers read and write (``t1.`` reads ``t1.opd.*`` and writes
    ``t1.lintas.*``): a second platform, or a test, on a shared cluster. Empty in production."""
    dedup_horizon_days: Annotated[float, Field(gt=0, le=365)] = 7
    """An event id seen this recently is a duplicate; older ids are forgotten."""
    future_skew_s: Annotated[float, Field(ge=0, le=86_400)] = 300
    """How far in the future a date or time in an event may be (clocks of OPD servers drift)."""
    max_record_bytes: Annotated[int, Field(ge=1024, le=900 * 1024)] = 256 * 1024
    """A larger record (key + value) is dead-lettered as ``too_large``; keeps canonical records
    and dead letters under the broker's 1 MiB message limit."""
    max_in_flight: Annotated[int, Field(ge=1, le=100_000)] = 2000
    """Outputs sent but not yet acknowledged by the broker; a worker reads no further until
    some are (their source offsets are committed only once they are)."""
    stream_buffer_maxsize: Annotated[int, Field(ge=1, le=1_000_000)] = 4096
    """Records faust buffers per partition before it pauses fetching."""
    commit_interval_s: Annotated[float, Field(gt=0, le=600)] = 1.0
    """How often consumed offsets are committed; a crash reprocesses at most this much."""
    session_timeout_s: Annotated[float, Field(ge=6, le=300)] = 30
    """A worker silent this long is dropped from the group and its partitions reassigned."""
    topic_refresh_s: Annotated[float, Field(gt=0, le=3600)] = 10
    """How often workers look for new ``opd.*`` topics (new event types) to subscribe to."""
    metrics_window_s: Annotated[int, Field(ge=1, le=3600)] = 60
    """Width of the tumbling windows counted to ``lintas.metrics`` (one minute)."""


class DeliverSettings(_Group):
    """The webhook deliverer (``lintas deliver``, :mod:`lintas.consumers.webhooks`).

    Usage::

        LINTAS_DELIVER__RETRY_HORIZON_S=3600 LINTAS_DELIVER__MAX_IN_FLIGHT=32 lintas deliver
    """

    group_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")] = (
        "lintas-deliver"
    )
    """Consumer group of the deliverers; also the key of their offsets in PostgreSQL."""
    directory_topic: str = "lintas.directory"
    """Where the deliverer follows the directory (tests give each their own)."""
    request_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    """A POST not answered within this is a timeout (retried)."""
    connect_timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    max_in_flight: Annotated[int, Field(ge=1, le=256)] = 16
    """Concurrent POSTs per subscriber (never more than one per event key)."""
    retry_horizon_s: Annotated[float, Field(ge=1, le=14 * 86_400)] = 86_400.0
    """An event not delivered this long after it was queued goes to the subscriber's DLQ."""
    backoff_initial_s: Annotated[float, Field(gt=0, le=3600)] = 1.0
    """Delay before the first retry; each further retry doubles it (with jitter)."""
    backoff_max_s: Annotated[float, Field(gt=0, le=86_400)] = 3600.0
    """Longest delay between two attempts, a ``Retry-After`` included."""
    breaker_threshold: Annotated[int, Field(ge=1, le=10_000)] = 5
    """Consecutive failures (5xx, timeouts, connection errors) that open a subscriber's circuit."""
    breaker_cooldown_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    """How long an open circuit waits before one probe; doubles while probes fail."""
    copy_batch_max: Annotated[int, Field(ge=1, le=10_000)] = 500
    """Records copied from the delivery topics into the queue per transaction."""
    poll_interval_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    """How often an idle subscriber's queue is looked at for retries that fell due."""
    log_retention_days: Annotated[float, Field(gt=0, le=365)] = 7.0
    """Delivered and dead-lettered events and their attempts are kept this long."""
    secrets_refresh_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    """Signing secrets are re-read this often (an old one expires without a directory change)."""


class SinkSettings(_Group):
    """The store sink (``lintas sink``) and analyst access (``lintas query``).

    Usage::

        LINTAS_SINK__MAX_DELAY_MS=500 LINTAS_SINK__BATCH_MAX_ROWS=20000 lintas sink
        LINTAS_SINK__QUERY_DSN=postgresql://budi:...@db:5432/lintas lintas query "SELECT 1"

    The sink reads the canonical topics of ``LINTAS_STREAMS__TOPIC_PREFIX`` (the topics the
    stream workers write), so the two always agree.
    """

    group_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")] = "lintas-store"
    """Consumer group of the sinks; also the key of their offsets in the store."""
    instance_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")] | None = None
    """Static group membership (``group.instance.id``): a sink restarted under the same id gets
    its partitions back at once instead of after the session timeout. One id per process."""
    batch_max_rows: Annotated[int, Field(ge=1, le=200_000)] = 10_000
    """Most events written in one transaction; under load batches grow up to this."""
    max_delay_ms: Annotated[float, Field(gt=0, le=60_000)] = 200
    """Longest a consumed event waits for its batch to fill before it is written (freshness)."""
    session_timeout_s: Annotated[float, Field(ge=1, le=300)] = 10
    """A sink silent this long leaves the group and its partitions go to the others."""
    topic_refresh_s: Annotated[float, Field(gt=0, le=3600)] = 30
    """How often the sink looks for new canonical topics (new event types)."""
    retry_max_s: Annotated[float, Field(gt=0, le=600)] = 10
    """Longest pause between two attempts to reach PostgreSQL while it is down."""
    query_dsn: str | None = None
    """Login of ``lintas query`` (a member of ``lintas_analyst``); unset means the platform
    provisions its own login ``lintas_query`` with a password derived from its own."""
    query_pii_dsn: str | None = None
    """The same for ``lintas query --pii`` (a member of ``lintas_analyst_pii``)."""
    query_timeout_s: Annotated[float, Field(gt=0, le=86_400)] = 300
    """Statement timeout of ``lintas query``."""

    @field_validator("query_dsn", "query_pii_dsn")
    @classmethod
    def _dsn_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql://")
        return value


class CaptureSettings(_Group):
    """Capture adapters for legacy databases (``lintas capture``, :mod:`lintas.producers.capture`).

    Usage::

        LINTAS_CAPTURE__POLL_INTERVAL_S=5 lintas capture run simda.yaml simpeg.yaml
    """

    state_dir: Path | None = None
    """Where each source's positions live (one SQLite file per source); unset means
    ``<data_dir>/capture``. Keep it on a persistent disk: losing it means a new snapshot."""
    batch_rows: Annotated[int, Field(ge=1, le=100_000)] = 1000
    """Most changes sent to Kafka before the position is committed."""
    snapshot_chunk_rows: Annotated[int, Field(ge=1, le=1_000_000)] = 5000
    """Rows read per consistent chunk of an initial snapshot."""
    poll_interval_s: Annotated[float, Field(gt=0, le=3600)] = 1.0
    """How often an idle table is polled, or an idle replication slot read."""
    heartbeat_s: Annotated[float, Field(gt=0, le=3600)] = 10.0
    """Idle sources still confirm their position this often (a slot's WAL is released, the
    binlog connection is known alive)."""
    retry_max_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    """Longest pause between two attempts to reach a source database that is down."""
    topic_prefix: Annotated[str, Field(pattern=r"^([a-z0-9][a-z0-9_-]*\.)*$")] = ""
    """Put before every topic capture writes (events and dead letters), as
    ``LINTAS_STREAMS__TOPIC_PREFIX`` does for the workers. Empty in production."""
    dlq_topic: str = "lintas.dlq"
    """Where rows that do not map to a valid event go (with the row's key and the reason)."""


class SecuritySettings(_Group):
    """Kafka principals, their ACLs and the local CA (``lintas security``, :mod:`lintas.security`).

    Usage::

        LINTAS_SECURITY__PRINCIPAL_PREFIX=t1. lintas security sync --dry-run
    """

    principal_prefix: Annotated[str, Field(pattern=r"^([a-z0-9][a-z0-9_-]*\.)?$")] = ""
    """Put before every principal Lintas manages (``t1.app-siak``): a second platform, or a
    test, on a shared cluster, whose ``lintas security sync`` then leaves the first one's
    principals alone. Empty in production."""
    scram_iterations: Annotated[int, Field(ge=4096, le=65_536)] = 8192
    """PBKDF2 rounds of the SCRAM-SHA-512 credentials Lintas creates (Kafka's minimum: 4096)."""
    service_password_dir: Path | None = None
    """Where ``lintas security sync`` writes the platform services' Kafka passwords (one
    owner-only file per service); unset means ``<data_dir>/secrets/kafka-users``."""
    ca_valid_days: Annotated[int, Field(ge=30, le=36_500)] = 3650
    """Validity of the local CA ``lintas up`` makes for the broker's TLS listener."""
    broker_cert_valid_days: Annotated[int, Field(ge=31, le=3650)] = 397
    """Validity of the local broker certificate; ``lintas up`` renews it 30 days before its
    end (clients keep trusting the same CA)."""


class StoreRetentionAction(StrEnum):
    """What happens to a row of the merged store once its retention has passed."""

    PSEUDONYMISE = "pseudonymise"
    """Personal fields removed, NIKs and subjects replaced by a keyed pseudonym: counts,
    regions and dates stay for analysis."""
    DELETE = "delete"
    """The row is deleted from the raw table and its typed table."""


class TypeRetention(_Group):
    """The store's retention of one event type (``LINTAS_RETENTION__EVENT_TYPES``)."""

    days: Annotated[float, Field(gt=0, le=36_500)]
    action: StoreRetentionAction = StoreRetentionAction.PSEUDONYMISE


class RetentionSettings(_Group):
    """How long personal data rests in the merged store (``lintas retention``).

    Usage::

        LINTAS_RETENTION__STORE_DAYS=1095 lintas retention run --dry-run
        LINTAS_RETENTION__EVENT_TYPES='{"dinkes.kunjungan_pasien.v1": {"days": 365,
            "action": "delete"}}' lintas sink

    An event type's days come from this mapping, else from ``store_retention_days`` in its
    ``.avsc``, else from ``store_days``. Kafka topics have their own retention
    (``retention_days`` in the ``.avsc``, ``LINTAS_KAFKA__RETENTION_DAYS``).
    """

    store_days: Annotated[float, Field(gt=0, le=36_500)] = 1825
    """Rows older than this (by event time) lose their personal data: five years unless the
    Pemda's retention schedule (jadwal retensi arsip) says otherwise."""
    store_action: StoreRetentionAction = StoreRetentionAction.PSEUDONYMISE
    event_types: dict[str, TypeRetention] = Field(default_factory=dict)
    """Per event type id (``dinkes.kunjungan_pasien.v1``): its own days and action."""
    interval_s: Annotated[float, Field(gt=0, le=7 * 86_400)] = 3600
    """How often the store sink runs the retention job (``lintas retention run`` runs it at
    once)."""
    batch_rows: Annotated[int, Field(ge=1, le=1_000_000)] = 5000
    """Rows changed per transaction, so a large backlog never holds long locks."""

    @field_validator("event_types")
    @classmethod
    def _type_ids(cls, value: dict[str, TypeRetention]) -> dict[str, TypeRetention]:
        for key in value:
            parts = key.split(".")
            if len(parts) != 3 or not parts[2].startswith("v") or not parts[2][1:].isdigit():
                raise ValueError(
                    f"{key!r} is not an event type id like dukcapil.kematian_dicatat.v1"
                )
        return value


class AuditSettings(_Group):
    """The audit log (:mod:`lintas.audit`) and the import of pgaudit's records.

    Usage::

        LINTAS_AUDIT__PGAUDIT_LOG_DIR=/var/log/postgresql lintas portal
    """

    retention_days: Annotated[int, Field(ge=365, le=3650)] = 730
    """Audit entries older than this are deleted by the retention job; the database refuses
    to delete any entry younger than 365 days, whatever this says."""
    pgaudit_log_dir: Path | None = None
    """Where PostgreSQL writes its ``jsonlog`` files (``*.json``); unset means the local
    stack's ``<data_dir>/postgres/log``. pgaudit's records of analysts' SQL are read there."""
    import_interval_s: Annotated[float, Field(gt=0, le=86_400)] = 30
    """How often the portal imports new pgaudit records into the audit log."""


class Settings(BaseSettings):
    """Root settings; one nested group per component."""

    model_config = SettingsConfigDict(
        env_prefix="LINTAS_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    kafka_bootstrap: str | None = None
    """``host:port[,host:port]``; unset means the local stack's broker."""
    pg_dsn: str | None = None
    """``postgresql://user[:password]@host:port/db``; unset means the local stack's database."""
    registry_url: str | None = None
    """Schema registry (Confluent REST API); unset means the local stack's registry."""
    data_dir: Path = Field(default_factory=default_data_dir)
    cache_dir: Path = Field(default_factory=default_cache_dir)
    timezone: str = "Asia/Jakarta"
    """Display time zone (WIB by default; ``Asia/Makassar`` for WITA, ``Asia/Jayapura`` for WIT).
    Storage is always UTC."""
    log_level: str = "INFO"
    test_scale: Annotated[float, Field(gt=0, le=100)] = 1.0
    """Multiplies event counts in tests and the demo (``LINTAS_TEST_SCALE``)."""

    kafka: KafkaSettings = KafkaSettings()
    local: LocalStackSettings = LocalStackSettings()
    producer: ProducerSettings = ProducerSettings()
    directory: DirectorySettings = DirectorySettings()
    gateway: GatewaySettings = GatewaySettings()
    streams: StreamsSettings = StreamsSettings()
    portal: PortalSettings = PortalSettings()
    deliver: DeliverSettings = DeliverSettings()
    sink: SinkSettings = SinkSettings()
    security: SecuritySettings = SecuritySettings()
    capture: CaptureSettings = CaptureSettings()
    retention: RetentionSettings = RetentionSettings()
    audit: AuditSettings = AuditSettings()

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. Asia/Jakarta)") from exc
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        for part in value.split(","):
            host, sep, port = part.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"{part!r} is not host:port")
        return value

    @field_validator("registry_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("pg_dsn")
    @classmethod
    def _dsn_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql://")
        return value

    @property
    def display_zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def load_settings(**overrides: object) -> Settings:
    """Read the settings once, turning a validation failure into a :class:`ConfigurationError`.

    The error names the environment variable (``LINTAS_KAFKA__PARTITIONS``) and the rule,
    so an operator can fix the deployment without reading a traceback.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        path = "__".join(str(part) for part in first["loc"]).upper()
        others = len(exc.errors()) - 1
        rule = first["msg"] + (f" (and {others} more problem(s))" if others else "")
        raise ConfigurationError(
            f"LINTAS_{path}", rule, hint="Fix the environment variable or remove it."
        ) from exc

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
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lintas.exceptions import ConfigurationError

__all__ = [
    "DirectorySettings",
    "KafkaSecurityProtocol",
    "KafkaSettings",
    "LocalStackSettings",
    "ProducerSettings",
    "SaslMechanism",
    "Settings",
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
    stop_timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0


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

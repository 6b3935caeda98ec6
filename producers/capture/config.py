"""Source files: one YAML file per captured database, read and checked once at start-up.

Usage::

    source = load_source(Path("capture/simda.yaml"))
    source.name, source.mechanism, source.tables["ta_setoran"].mapping.rules

A source file (``docs/capture.md`` has the full reference)::

    source: simda-pendapatan          # [a-z0-9][a-z0-9_-]*: names the state, spool and ids
    opd: bapenda                      # ce_source is /opd/<opd>/<app>
    app: simda
    database:
      kind: mariadb                   # mariadb | mysql | postgresql
      dsn: mysql://lintas_capture@10.20.1.5:3306/simda
      password_file: /run/secrets/simda-capture      # or password_env: SIMDA_PASSWORD
    mechanism: binlog                 # polling | binlog | logical | outbox
    snapshot: true                    # binlog/logical: load existing rows first
    timezone: Asia/Jakarta            # how naive DATETIME values are read
    tables:
      - mapping: ta_setoran.mapping.yaml             # relative to this file
      - table: ta_skpd                              # or the mapping inline
        events: [...]
        poll: {column: tgl_update, mode: timestamp}  # polling only

Every rule is checked here; columns are checked against the database when the capture
starts (:mod:`.preflight`).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ._yaml import Located, load_located, raise_validation
from .exceptions import ConfigInvalid
from .mapping import TableMapping, load_mapping, parse_mapping
from .types import Mechanism

__all__ = [
    "BinlogOptions",
    "DatabaseAddress",
    "LogicalOptions",
    "OutboxOptions",
    "PollOptions",
    "SourceConfig",
    "TableConfig",
    "load_source",
]

_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_IDENT = r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSpec(_Spec):
    kind: Literal["mariadb", "mysql", "postgresql"]
    dsn: str
    password_env: str | None = None
    password_file: Path | None = None

    @field_validator("dsn")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not value.startswith(("mysql://", "mariadb://", "postgresql://", "postgres://")):
            raise ValueError("must start with mysql://, mariadb:// or postgresql://")
        return value


class PollOptions(_Spec):
    """How a table is polled.

    ``mode: key`` reads rows whose ``column`` (an increasing key, such as an
    AUTO_INCREMENT id) is above the high-water mark: inserts only. ``mode: timestamp``
    reads rows whose ``column`` (``updated_at``, or a version number the app increments)
    is at or above the mark minus ``overlap_s``, so a transaction that committed late with
    an earlier time is still seen; rows already sent are recognised and skipped.
    """

    column: str
    mode: Literal["key", "timestamp"] = "timestamp"
    overlap_s: Annotated[float, Field(ge=0, le=86_400)] = 60.0
    created_column: str | None = None
    """A row whose ``column`` equals this one (never updated) is an insert, else an update."""
    deleted_column: str | None = None
    """A soft-delete flag: a row where it is set (not null, not 0) is a delete."""


class BinlogOptions(_Spec):
    server_id: Annotated[int, Field(ge=1, le=2**32 - 1)] | None = None
    """The replica id this capture registers with; unique among the server's replicas.
    Derived from the source name when unset."""


class LogicalOptions(_Spec):
    slot: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,63}$")] | None = None
    """Replication slot; ``lintas_<source>`` (dashes as underscores) by default."""
    publication: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,63}$")] | None = None
    """Publication naming the tables; same default as the slot."""


class OutboxOptions(_Spec):
    table: Annotated[str, Field(pattern=_IDENT)] = "lintas_outbox"


class TableSpec(_Spec):
    mapping: str | None = None
    poll: PollOptions | None = None
    # An inline mapping: the keys of a mapping file (checked by the mapping's own model).
    table: Any = None
    key: Any = None
    events: Any = None


class SourceSpec(_Spec):
    source: Annotated[str, Field(pattern=_NAME)]
    opd: Annotated[str, Field(pattern=_NAME)]
    app: Annotated[str, Field(pattern=_NAME)]
    database: DatabaseSpec
    mechanism: Mechanism
    snapshot: bool = True
    timezone: str = "Asia/Jakarta"
    binlog: BinlogOptions = BinlogOptions()
    logical: LogicalOptions = LogicalOptions()
    outbox: OutboxOptions = OutboxOptions()
    tables: list[TableSpec] = []

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. Asia/Jakarta)") from exc
        return value


@dataclass(frozen=True, kw_only=True)
class DatabaseAddress:
    """Where the source database is, with the password resolved (never printed)."""

    kind: Literal["mariadb", "postgresql"]
    host: str
    port: int
    database: str
    user: str
    password: str = field(repr=False)
    dsn: str = field(repr=False)
    """A DSN for asyncpg (PostgreSQL), password included."""

    @property
    def display(self) -> str:
        return f"{self.kind}://{self.user}@{self.host}:{self.port}/{self.database}"


@dataclass(frozen=True, kw_only=True)
class TableConfig:
    """One captured table: its mapping and, for polling, how it is polled."""

    name: str
    mapping: TableMapping
    poll: PollOptions | None = None


@dataclass(frozen=True, kw_only=True)
class SourceConfig:
    """A checked source file.

    Attributes:
        path: the file.
        name: the source's name (``simda-pendapatan``).
        spec: the file's settings as read.
        database: where to connect.
        tables: table name -> its configuration, in file order.
    """

    path: Path
    name: str
    spec: SourceSpec
    database: DatabaseAddress
    tables: dict[str, TableConfig]

    @property
    def mechanism(self) -> Mechanism:
        return self.spec.mechanism

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.spec.timezone)

    @property
    def slot(self) -> str:
        return self.spec.logical.slot or "lintas_" + self.name.replace("-", "_")

    @property
    def publication(self) -> str:
        return self.spec.logical.publication or "lintas_" + self.name.replace("-", "_")

    @property
    def server_id(self) -> int:
        # Derived from the name so two sources never pick the same replica id by accident;
        # kept away from small ids that real replicas use.
        return self.spec.binlog.server_id or 1_000_000 + zlib.crc32(self.name.encode()) % 10**9


def load_source(path: Path, *, environ: Mapping[str, str] | None = None) -> SourceConfig:
    """Read a source file and its mapping files, and check every rule that needs no database.

    Raises:
        ConfigInvalid: the file breaks a rule (with its line), or the password cannot be read.
        MappingInvalid: a mapping names an unknown event type, field or transform.
    """
    doc = load_located(path)
    try:
        spec = SourceSpec.model_validate(doc.data if doc.data is not None else {})
    except ValidationError as exc:
        raise_validation(doc, exc)
    _check_mechanism(doc, spec)
    zone = ZoneInfo(spec.timezone)
    tables: dict[str, TableConfig] = {}
    for i, entry in enumerate(spec.tables):
        mapping = _table_mapping(doc, i, entry, zone)
        if mapping.table in tables:
            raise ConfigInvalid(path, doc.line(("tables", i)), f"table {mapping.table} twice")
        if spec.mechanism is Mechanism.POLLING and entry.poll is None:
            raise ConfigInvalid(
                path,
                doc.line(("tables", i)),
                f"table {mapping.table}: polling needs `poll: {{column: ..., mode: ...}}`",
            )
        tables[mapping.table] = TableConfig(name=mapping.table, mapping=mapping, poll=entry.poll)
    database = _address(doc, spec.database, os.environ if environ is None else environ)
    return SourceConfig(path=path, name=spec.source, spec=spec, database=database, tables=tables)


def _check_mechanism(doc: Located, spec: SourceSpec) -> None:
    kind = spec.database.kind
    line = doc.line(("mechanism",))
    if spec.mechanism is Mechanism.BINLOG and kind == "postgresql":
        raise ConfigInvalid(doc.path, line, "binlog reads MariaDB/MySQL; PostgreSQL uses logical")
    if spec.mechanism is Mechanism.LOGICAL and kind != "postgresql":
        raise ConfigInvalid(doc.path, line, "logical reads PostgreSQL; MariaDB/MySQL use binlog")
    if spec.mechanism is Mechanism.OUTBOX and spec.tables:
        raise ConfigInvalid(
            doc.path,
            doc.line(("tables",)),
            "an outbox source has no tables: its rows carry their event type and payload",
        )
    if spec.mechanism is not Mechanism.OUTBOX and not spec.tables:
        raise ConfigInvalid(doc.path, doc.line(("tables",)), "list at least one table")


def _table_mapping(doc: Located, index: int, entry: TableSpec, zone: ZoneInfo) -> TableMapping:
    at = ("tables", index)
    inline = entry.table is not None or entry.events is not None or entry.key is not None
    if entry.mapping is not None and inline:
        raise ConfigInvalid(
            doc.path, doc.line(at), "a table takes `mapping: <file>` or an inline mapping, not both"
        )
    if entry.mapping is not None:
        target = (doc.path.parent / entry.mapping).resolve()
        return load_mapping(target, zone=zone)
    if not inline:
        raise ConfigInvalid(doc.path, doc.line(at), "a table needs `mapping: <file>` or `table:`")
    sub = doc.sub(at)
    data = {k: v for k, v in sub.data.items() if k != "poll"}
    return parse_mapping(Located(sub.path, data, sub.lines), zone=zone)


def _address(doc: Located, spec: DatabaseSpec, environ: Mapping[str, str]) -> DatabaseAddress:
    parts = urlsplit(spec.dsn)
    line = doc.line(("database", "dsn"))
    password = unquote(parts.password) if parts.password else ""
    if spec.password_env:
        if spec.password_env not in environ:
            raise ConfigInvalid(
                doc.path,
                doc.line(("database", "password_env")),
                f"environment variable {spec.password_env} is not set",
            )
        password = environ[spec.password_env]
    if spec.password_file:
        file = spec.password_file
        if not file.is_absolute():
            file = doc.path.parent / file
        try:
            password = file.read_text().strip()
        except OSError as exc:
            raise ConfigInvalid(
                doc.path,
                doc.line(("database", "password_file")),
                f"cannot read {file}: {exc.strerror}",
            ) from exc
    if not parts.hostname or not parts.username:
        raise ConfigInvalid(doc.path, line, "the dsn needs a user and a host: kind://user@host/db")
    database = parts.path.lstrip("/")
    if not database:
        raise ConfigInvalid(doc.path, line, "the dsn needs a database: kind://user@host:port/db")
    kind: Literal["mariadb", "postgresql"] = (
        "postgresql" if spec.kind == "postgresql" else "mariadb"
    )
    port = parts.port or (5432 if kind == "postgresql" else 3306)
    user = unquote(parts.username)
    dsn = ""
    if kind == "postgresql":
        from urllib.parse import quote

        creds = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
        dsn = f"postgresql://{creds}@{parts.hostname}:{port}/{database}"
        if parts.query:
            dsn += "?" + parts.query
    return DatabaseAddress(
        kind=kind,
        host=parts.hostname,
        port=port,
        database=database,
        user=user,
        password=password,
        dsn=dsn,
    )

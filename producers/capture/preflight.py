"""Start-up checks: a source that lacks what its mechanism needs is refused, with the exact
settings and grants to change, before anything is read.

Every check collects all of its problems first, so one start-up names everything to fix.
"""

from __future__ import annotations

import logging

from .config import SourceConfig
from .db import MariaDB, Postgres, SourceDatabase
from .exceptions import MappingInvalid, SourceMisconfigured

__all__ = ["check_binlog", "check_logical", "check_tables"]

log = logging.getLogger("lintas.capture")


async def check_tables(db: SourceDatabase, config: SourceConfig) -> dict[str, list[str]]:
    """Check each table exists, is readable, and has every column its mapping names.

    Returns:
        table -> its key columns (the mapping's ``key``, else the primary key).

    Raises:
        SourceMisconfigured: a table is missing or not readable by the capture's user.
        MappingInvalid: a mapping names a column the table lacks, or the table has no key.
    """
    keys: dict[str, list[str]] = {}
    user = config.database.user
    missing: list[str] = []
    for name, table in config.tables.items():
        columns = await db.columns(name)
        if not columns:
            missing.append(
                f"table {name} does not exist or {user} cannot read it "
                f"(GRANT SELECT ON {_grant_target(db, name)} TO {_grantee(db, user)})"
            )
            continue
        primary = await db.primary_key(name)
        table.mapping.check_columns(columns, key=primary)
        if table.poll is not None:
            for option in ("column", "created_column", "deleted_column"):
                column = getattr(table.poll, option)
                if column is not None and column.lower() not in columns:
                    raise MappingInvalid(
                        config.path,
                        None,
                        f"table {name}: poll {option} {column!r} is not a column of the table",
                    )
        keys[name] = list(table.mapping.key or primary)
    if missing:
        raise SourceMisconfigured(config.name, config.mechanism.value, missing)
    return keys


def _grant_target(db: SourceDatabase, table: str) -> str:
    if isinstance(db, MariaDB) and "." not in table:
        return f"{db.address.database}.{table}"
    return table


def _grantee(db: SourceDatabase, user: str) -> str:
    return f"'{user}'@'%'" if isinstance(db, MariaDB) else user


async def check_binlog(db: MariaDB, config: SourceConfig) -> bool:
    """Check the MariaDB/MySQL settings and grants binlog capture needs.

    Returns:
        True when the server writes column names into the binlog (``binlog_row_metadata``
        FULL); False for servers without that setting (MySQL 5.7, MariaDB before 10.5),
        where column names are read from ``information_schema`` instead.

    Raises:
        SourceMisconfigured: with every setting to change.
    """
    rows = await db.fetch(
        "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('log_bin', 'binlog_format', "
        "'binlog_row_image', 'binlog_row_metadata', 'server_id')"
    )
    found = {str(r["variable_name"]).lower(): str(r["value"]).upper() for r in rows}
    problems: list[str] = []
    if found.get("log_bin") != "ON":
        problems.append(
            "the binary log is off: add log_bin=mariadb-bin to the [mariadb] section of the "
            "server's configuration and restart the server"
        )
    wanted = {"binlog_format": "ROW", "binlog_row_image": "FULL"}
    metadata = "binlog_row_metadata" in found
    if metadata:
        wanted["binlog_row_metadata"] = "FULL"
    for name, value in wanted.items():
        if found.get(name) != value:
            problems.append(
                f"{name} is {found.get(name, 'unset')}: SET GLOBAL {name} = '{value}' and add "
                f"{name}={value} to the server's configuration"
            )
    if found.get("server_id") in (None, "0"):
        problems.append("server_id is 0: set server_id=1 (any non-zero id) and restart")
    grants = " ".join(str(next(iter(r.values()))).upper() for r in await db.fetch("SHOW GRANTS"))
    superuser = "ALL PRIVILEGES ON *.*" in grants or " SUPER" in grants
    user = _grantee(db, config.database.user)
    if not superuser and "REPLICATION SLAVE" not in grants and "REPLICA" not in grants:
        problems.append(f"{user} may not read the binlog: GRANT REPLICATION SLAVE ON *.* TO {user}")
    if not superuser and not any(
        g in grants for g in ("REPLICATION CLIENT", "BINLOG MONITOR", "SLAVE MONITOR")
    ):
        problems.append(
            f"{user} may not see binlog positions: GRANT REPLICATION CLIENT ON *.* TO {user} "
            "(BINLOG MONITOR on MariaDB 10.5+)"
        )
    if problems:
        raise SourceMisconfigured(config.name, "binlog", problems)
    if not metadata:
        log.warning(
            "%s: the server has no binlog_row_metadata (MySQL 5.7 or MariaDB < 10.5): column "
            "names are read from information_schema, so an ALTER TABLE while the capture is "
            "behind can mislabel columns; upgrade the server when you can",
            config.name,
        )
    return metadata


async def check_logical(db: Postgres, config: SourceConfig) -> None:
    """Check the PostgreSQL settings, role and publication logical decoding needs.

    Raises:
        SourceMisconfigured: with every setting, grant and statement to run.
    """
    problems: list[str] = []
    settings = {
        r["name"]: r["setting"]
        for r in await db.fetch(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('wal_level', 'max_replication_slots', 'max_slot_wal_keep_size')"
        )
    }
    if settings.get("wal_level") != "logical":
        problems.append(
            f"wal_level is {settings.get('wal_level')}: ALTER SYSTEM SET wal_level = logical, "
            "then restart PostgreSQL"
        )
    slot = config.slot
    slots = await db.fetch("SELECT slot_name FROM pg_replication_slots")
    have_slot = any(r["slot_name"] == slot for r in slots)
    limit = int(settings.get("max_replication_slots") or 0)
    if not have_slot and len(slots) >= limit:
        problems.append(
            f"all {limit} replication slots are in use: raise max_replication_slots "
            "(ALTER SYSTEM SET max_replication_slots = ...; restart)"
        )
    role = await db.fetch(
        "SELECT rolsuper, rolreplication FROM pg_roles WHERE rolname = current_user"
    )
    user = config.database.user
    if role and not (role[0]["rolsuper"] or role[0]["rolreplication"]):
        problems.append(f"role {user} may not use replication slots: ALTER ROLE {user} REPLICATION")
    publication = config.publication
    published = {
        f"{r['schemaname']}.{r['tablename']}"
        for r in await db.fetch(
            "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1",
            publication,
        )
    }
    wanted = {name: name if "." in name else f"public.{name}" for name in config.tables}
    absent = [q for q in wanted.values() if q not in published]
    if absent:
        exists = await db.fetch("SELECT 1 FROM pg_publication WHERE pubname = $1", publication)
        verb = (
            f"ALTER PUBLICATION {publication} ADD TABLE"
            if exists
            else (f"CREATE PUBLICATION {publication} FOR TABLE")
        )
        problems.append(
            f"publication {publication} does not include {', '.join(absent)}: "
            f"{verb} {', '.join(absent)} (as the tables' owner)"
        )
    for name, qualified in wanted.items():
        identity = await db.fetch(
            "SELECT relreplident FROM pg_class WHERE oid = to_regclass($1)", qualified
        )
        mode = identity[0]["relreplident"] if identity else "d"
        mapping = config.tables[name].mapping
        if mode == "f":
            continue
        if not await db.primary_key(name):
            # Without a replica identity, PostgreSQL refuses the application's own UPDATEs
            # and DELETEs on a published table: never leave it so.
            problems.append(
                f"{qualified} has no primary key, so its updates and deletes cannot be "
                f"replicated: ALTER TABLE {qualified} REPLICA IDENTITY FULL"
            )
        elif mapping.needs_before_image:
            problems.append(
                f"{qualified} sends only its key on update and delete, but the mapping reads "
                f"whole rows: ALTER TABLE {qualified} REPLICA IDENTITY FULL"
            )
    if problems:
        raise SourceMisconfigured(config.name, "logical", problems)
    if settings.get("max_slot_wal_keep_size") == "-1":
        log.warning(
            "%s: max_slot_wal_keep_size is unlimited: a capture stopped for long keeps WAL "
            "until the disk fills. Set a bound: ALTER SYSTEM SET max_slot_wal_keep_size = "
            "'10GB'; SELECT pg_reload_conf()",
            config.name,
        )


async def check_source(config: SourceConfig) -> list[str]:
    """Every start-up check of ``config`` without changing anything (no slot is created).

    Returns:
        Notes for the operator (what was checked).

    Raises:
        SourceUnavailable, SourceMisconfigured, MappingInvalid: as a start would.
    """
    from .db import open_database
    from .types import Mechanism

    db = open_database(
        config.database,
        source=config.name,
        application_name=f"lintas-capture-check-{config.name}"[:63],
    )
    await db.connect()
    try:
        notes = [f"connected to {config.database.display}"]
        if config.mechanism is Mechanism.OUTBOX:
            table = config.spec.outbox.table
            columns = await db.columns(table)
            if not columns:
                raise SourceMisconfigured(
                    config.name,
                    "outbox",
                    [f"the outbox table {table} does not exist or cannot be read"],
                )
            notes.append(f"outbox table {table} found")
            return notes
        keys = await check_tables(db, config)
        notes += [
            f"table {t}: key ({', '.join(k)}), mapping columns present" for t, k in keys.items()
        ]
        if isinstance(db, MariaDB) and config.mechanism is Mechanism.BINLOG:
            await check_binlog(db, config)
            notes.append("binlog settings and replication grants are in place")
        if isinstance(db, Postgres) and config.mechanism is Mechanism.LOGICAL:
            await check_logical(db, config)
            notes.append(f"wal_level, role and publication {config.publication} are in place")
        return notes
    finally:
        await db.close()

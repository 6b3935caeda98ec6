"""SQL access to a source database, the same for MariaDB/MySQL (aiomysql) and PostgreSQL
(asyncpg): what polling, snapshots, the outbox relay and the start-up checks need.

Rows come back as dicts with lower-case column names (mappings match columns
case-insensitively). Keys are compared in key order; text key columns are ordered by their
bytes (``COLLATE "C"``, ``BINARY``) so that the order in SQL is the order in Python, which
the snapshot's chunk bookkeeping relies on.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .config import DatabaseAddress
from .exceptions import SourceUnavailable

__all__ = ["MariaDB", "Postgres", "SourceDatabase", "open_database"]

_TEXT_TYPES = frozenset(
    {
        "char",
        "varchar",
        "text",
        "tinytext",
        "mediumtext",
        "longtext",
        "character varying",
        "character",
        "bpchar",
        "name",
        "citext",
        "enum",
    }
)


def _lower(row: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in row.items()}


class SourceDatabase(abc.ABC):
    """One connection to a source database.

    Args:
        address: where to connect.
        source: the source's name, for errors.
        application_name: how the connection shows up on the server.
    """

    kind: str

    def __init__(self, address: DatabaseAddress, *, source: str, application_name: str) -> None:
        self.address = address
        self.source = source
        self.application_name = application_name
        self._types: dict[str, dict[str, str]] = {}

    @abc.abstractmethod
    async def connect(self) -> None:
        """Open the connection. Raises :class:`SourceUnavailable` when it cannot."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the connection; never raises."""

    @abc.abstractmethod
    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """Rows of a query (``{}`` placeholders are numbered for the dialect)."""

    @abc.abstractmethod
    async def execute(self, sql: str, *args: Any) -> None:
        """Run a statement."""

    @abc.abstractmethod
    def quote(self, identifier: str) -> str:
        """An identifier quoted for the dialect (``schema.table`` quoted per part)."""

    @abc.abstractmethod
    def param(self, index: int) -> str:
        """The placeholder of the ``index``-th (0-based) argument."""

    @property
    @abc.abstractmethod
    def default_schema(self) -> str:
        """The schema a table name without one lies in."""

    def split(self, table: str) -> tuple[str, str]:
        """``(schema, table)`` of a configured table name, the default schema when it has none."""
        schema, _, name = table.rpartition(".")
        return schema or self.default_schema, name

    async def columns(self, table: str) -> dict[str, str]:
        """Column name (lower-case) -> data type of ``table``; empty when it does not exist."""
        schema, name = self.split(table)
        rows = await self.fetch(
            "SELECT column_name AS name, data_type AS type FROM information_schema.columns "
            f"WHERE table_schema = {self.param(0)} AND table_name = {self.param(1)} "
            "ORDER BY ordinal_position",
            schema,
            name,
        )
        return {str(r["name"]).lower(): str(r["type"]).lower() for r in rows}

    @abc.abstractmethod
    async def primary_key(self, table: str) -> list[str]:
        """The primary key's columns (lower-case) in key order; empty when there is none."""

    async def __aenter__(self) -> SourceDatabase:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- shared SQL ------------------------------------------------------------------------

    async def key_order(self, table: str, key: Sequence[str]) -> list[str]:
        """The key columns as ORDER BY/compare expressions, text ones by their bytes."""
        types = self._types.get(table)
        if types is None:
            types = self._types[table] = await self.columns(table)
        return [
            self.binary(self.quote(c)) if types.get(c) in _TEXT_TYPES else self.quote(c)
            for c in key
        ]

    @abc.abstractmethod
    def binary(self, expression: str) -> str:
        """``expression`` compared by its bytes."""

    async def select_after(
        self,
        table: str,
        key: Sequence[str],
        after: Sequence[Any] | None,
        limit: int,
        *,
        extra_where: str = "",
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` rows of ``table`` with a key above ``after``, in key order."""
        order = await self.key_order(table, key)
        where, args = self.keyset_after(order, after)
        if extra_where:
            where = f"({where}) AND ({extra_where})" if where else extra_where
        sql = f"SELECT * FROM {self.quote(table)}"
        if where:
            sql += f" WHERE {where}"
        sql += f" ORDER BY {', '.join(order)} LIMIT {int(limit)}"
        return await self.fetch(sql, *args)

    def keyset_after(
        self, order: Sequence[str], after: Sequence[Any] | None, *, first_param: int = 0
    ) -> tuple[str, list[Any]]:
        """A ``(k1, k2) > (..)`` condition, or nothing when ``after`` is None."""
        if after is None:
            return "", []
        params = [self.param(first_param + i) for i in range(len(order))]
        if len(order) == 1:
            return f"{order[0]} > {params[0]}", list(after)
        return f"({', '.join(order)}) > ({', '.join(params)})", list(after)


class MariaDB(SourceDatabase):
    """MariaDB or MySQL through aiomysql."""

    kind = "mariadb"

    def __init__(self, address: DatabaseAddress, *, source: str, application_name: str) -> None:
        super().__init__(address, source=source, application_name=application_name)
        self._conn: Any = None

    async def connect(self) -> None:
        import aiomysql
        import pymysql

        a = self.address
        try:
            self._conn = await aiomysql.connect(
                host=a.host,
                port=a.port,
                user=a.user,
                password=a.password,
                db=a.database,
                autocommit=True,
                charset="utf8mb4",
                connect_timeout=10,
                program_name=self.application_name,
            )
        except (pymysql.err.MySQLError, OSError) as exc:
            raise SourceUnavailable(self.source, f"cannot connect to {a.display}: {exc}") from exc

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        import aiomysql
        import pymysql

        try:
            async with self._conn.cursor(aiomysql.DictCursor) as cur:
                await cur.execute(sql, args or None)
                rows = await cur.fetchall()
        except pymysql.err.OperationalError as exc:
            raise SourceUnavailable(self.source, str(exc)) from exc
        return [_lower(r) for r in rows]

    async def execute(self, sql: str, *args: Any) -> None:
        import pymysql

        try:
            async with self._conn.cursor() as cur:
                await cur.execute(sql, args or None)
        except pymysql.err.OperationalError as exc:
            raise SourceUnavailable(self.source, str(exc)) from exc

    def quote(self, identifier: str) -> str:
        return ".".join("`" + part.replace("`", "``") + "`" for part in identifier.split("."))

    def param(self, index: int) -> str:
        return "%s"

    def binary(self, expression: str) -> str:
        return f"BINARY {expression}"

    @property
    def default_schema(self) -> str:
        return self.address.database  # a MariaDB schema is a database

    async def primary_key(self, table: str) -> list[str]:
        schema, name = self.split(table)
        rows = await self.fetch(
            "SELECT column_name AS name FROM information_schema.key_column_usage "
            "WHERE table_schema = %s AND table_name = %s AND constraint_name = 'PRIMARY' "
            "ORDER BY ordinal_position",
            schema,
            name,
        )
        return [str(r["name"]).lower() for r in rows]

    async def consistent_chunk(
        self, table: str, key: Sequence[str], after: Sequence[Any] | None, limit: int
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """A chunk read in a consistent snapshot, and the binlog position it matches.

        ``START TRANSACTION WITH CONSISTENT SNAPSHOT`` makes MariaDB report, in
        ``binlog_snapshot_file``/``_position``, the binlog position the snapshot is exact
        for: every change before it is in the rows, none after it.
        """
        await self.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        try:
            status = await self.fetch("SHOW STATUS LIKE 'binlog_snapshot_%%'")
            found = {str(r["variable_name"]).lower(): r["value"] for r in status}
            rows = await self.select_after(table, key, after, limit)
        finally:
            await self.execute("COMMIT")
        mark = {
            "file": str(found["binlog_snapshot_file"]),
            "pos": int(found["binlog_snapshot_position"]),
        }
        return rows, mark


class Postgres(SourceDatabase):
    """PostgreSQL through asyncpg."""

    kind = "postgresql"

    def __init__(self, address: DatabaseAddress, *, source: str, application_name: str) -> None:
        super().__init__(address, source=source, application_name=application_name)
        self._conn: Any = None

    @property
    def connection(self) -> Any:
        """The asyncpg connection (logical decoding runs its own SQL on it)."""
        return self._conn

    async def connect(self) -> None:
        import asyncpg

        from lintas.postgres import connect

        try:
            self._conn = await connect(
                self.address.dsn, application_name=self.application_name, timeout=10
            )
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            raise SourceUnavailable(
                self.source, f"cannot connect to {self.address.display}: {exc}"
            ) from exc

    async def close(self) -> None:
        if self._conn is not None:
            try:
                await self._conn.close(timeout=5)
            except Exception:  # a connection already broken: nothing left to close cleanly
                self._conn.terminate()
            self._conn = None

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        with self._unavailable_when_lost():
            rows = await self._conn.fetch(sql, *args)
        return [_lower(dict(r)) for r in rows]

    async def execute(self, sql: str, *args: Any) -> None:
        with self._unavailable_when_lost():
            await self._conn.execute(sql, *args)

    @contextlib.contextmanager
    def _unavailable_when_lost(self) -> Iterator[None]:
        """A lost connection or a server going down raises :class:`SourceUnavailable`."""
        import asyncpg

        try:
            yield
        except (
            OSError,
            asyncpg.exceptions.ConnectionDoesNotExistError,
            asyncpg.exceptions.AdminShutdownError,
            asyncpg.exceptions.CannotConnectNowError,
        ) as exc:
            raise SourceUnavailable(self.source, str(exc)) from exc

    def quote(self, identifier: str) -> str:
        return ".".join('"' + part.replace('"', '""') + '"' for part in identifier.split("."))

    def param(self, index: int) -> str:
        return f"${index + 1}"

    def binary(self, expression: str) -> str:
        return f'{expression} COLLATE "C"'

    @property
    def default_schema(self) -> str:
        return "public"

    async def primary_key(self, table: str) -> list[str]:
        schema, name = self.split(table)
        rows = await self.fetch(
            "SELECT a.attname AS name FROM pg_index i "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
            "WHERE i.indrelid = to_regclass($1) AND i.indisprimary "
            "ORDER BY array_position(i.indkey, a.attnum)",
            f"{self.quote(schema)}.{self.quote(name)}",
        )
        return [str(r["name"]).lower() for r in rows]

    async def consistent_chunk(
        self, table: str, key: Sequence[str], after: Sequence[Any] | None, limit: int
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """A chunk read in a REPEATABLE READ snapshot, and that snapshot's xid horizon.

        The stream then skips, for keys of this chunk, the transactions this snapshot
        already saw (their xid is visible in it): exact, whatever the commit order.
        """
        async with self._conn.transaction(isolation="repeatable_read", readonly=True):
            snap = await self._conn.fetchval("SELECT txid_current_snapshot()::text")
            rows = await self.select_after(table, key, after, limit)
        xmin, xmax, xip = str(snap).split(":")
        mark = {"xmin": int(xmin), "xmax": int(xmax), "xip": [int(x) for x in xip.split(",") if x]}
        return rows, mark


def open_database(
    address: DatabaseAddress, *, source: str, application_name: str
) -> MariaDB | Postgres:
    """The client for ``address``'s kind (not yet connected)."""
    cls = Postgres if address.kind == "postgresql" else MariaDB
    return cls(address, source=source, application_name=application_name)

"""Shared plumbing of the directory API: connections, transactions, the outbox."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Self, TypeVar

import orjson
from pydantic import BaseModel

from lintas.kafka import KafkaConnection
from lintas.postgres import create_pool
from lintas.schemas import Catalog, load_catalog
from lintas.settings import DirectorySettings, Settings
from lintas.topics import DIRECTORY_TOPIC

from . import _secrets
from ._outbox import ChangePublisher
from .exceptions import AlreadyExists, InvalidEntry, NotFound, Problem
from .models import AppStatus, parse_entry

__all__ = ["DirectoryBase", "entity_key", "key_refusal"]

log = logging.getLogger(__name__)

E = TypeVar("E", bound=BaseModel)

# A key used this recently counts as in use: revoking the last one needs force.
KEY_IN_USE_WINDOW = dt.timedelta(days=7)
# last_used_at is written at most this often per key, so verification stays a read.
TOUCH_INTERVAL = dt.timedelta(seconds=60)
DEFAULT_ROTATION_OVERLAP = dt.timedelta(days=7)

NOT_FOUND_HINTS = {
    "OPD": "See `lintas opd list`.",
    "application": "See `lintas apps list`.",
    "subscriber": "See `lintas subscribers list`.",
    "subscription": "See `lintas subscriptions list`.",
}


def entity_key(kind: str, name: str) -> str:
    """Key of an entity in ``lintas.directory``: ``opd:dukcapil``, ``app:siak``, ..."""
    return f"{kind}:{name}"


def key_refusal(
    *,
    revoked_at: dt.datetime | None,
    expires_at: dt.datetime | None,
    app_status: str,
    secret_ok: bool,
    now: dt.datetime,
) -> str | None:
    """Why a presented key does not authenticate, or None when it does.

    The same rule serves the database path here and the topic snapshot the gateway holds.
    """
    if not secret_ok:
        return "unknown key"
    if revoked_at is not None:
        return "key revoked"
    if expires_at is not None and expires_at <= now:
        return "key expired (rotated)"
    if app_status == AppStatus.RETIRED:
        return "application retired"
    return None


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _init_connection(conn: Any) -> None:
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda v: orjson.dumps(v).decode(),
        decoder=orjson.loads,
        schema="pg_catalog",
    )


def row_dict(row: Mapping[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    skip = {"created_at", "updated_at", *drop}
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in row.items() if k not in skip}


class DirectoryBase:
    """Connections, transactions and publishing; the entity mixins build on it."""

    def __init__(
        self,
        pool: Any,
        *,
        settings: DirectorySettings,
        secret_box: _secrets.SecretBox,
        publisher: ChangePublisher | None = None,
        catalog: Catalog | None = None,
        owns_pool: bool = False,
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._box = secret_box
        self._publisher = publisher
        self.catalog = catalog or load_catalog()
        self._owns_pool = owns_pool
        self.last_publish_error: BaseException | None = None
        # The connection of an open transaction() block, so nested changes join it.
        self._current: ContextVar[Any | None] = ContextVar("directory_tx", default=None)

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        pg_dsn: str | None = None,
        kafka: KafkaConnection | None = None,
        publish: bool = True,
        catalog: Catalog | None = None,
        topic: str = DIRECTORY_TOPIC,
    ) -> Self:
        """Connect to the directory's database (and Kafka, to publish changes).

        Args:
            settings: the root settings (addresses resolved from them unless given).
            pg_dsn: overrides the resolved database address.
            kafka: overrides the resolved Kafka connection.
            publish: False keeps changes in the outbox (tests, offline imports).
            topic: where changes are published (tests give each their own topic).
        """
        if pg_dsn is None or (publish and kafka is None):
            from lintas.endpoints import resolve_endpoints

            endpoints = resolve_endpoints(settings)
            pg_dsn = pg_dsn or endpoints.pg_dsn
            kafka = kafka or endpoints.kafka
        pool = await create_pool(
            pg_dsn, application_name="lintas-directory", init=_init_connection, max_size=5
        )
        key_file = settings.directory.secret_key_file or (
            settings.data_dir / "secrets" / "directory.key"
        )
        return cls(
            pool,
            settings=settings.directory,
            secret_box=_secrets.SecretBox(key_file),
            publisher=(
                ChangePublisher(kafka, topic=topic) if publish and kafka is not None else None
            ),
            catalog=catalog,
            owns_pool=True,
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Make every change inside the block one transaction (an import, a bulk edit).

        Changes are published once the whole block has committed; an error anywhere rolls
        all of them back.
        """
        async with self._tx():
            yield

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[Any]:
        outer = self._current.get()
        if outer is not None:
            async with outer.transaction():  # a savepoint inside the caller's transaction
                yield outer
            return
        async with self._pool.acquire() as conn:
            token = self._current.set(conn)
            try:
                async with conn.transaction():
                    yield conn
            finally:
                self._current.reset(token)
        await self._after_change()

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[Any]:
        outer = self._current.get()
        if outer is not None:
            yield outer
            return
        async with self._pool.acquire() as conn:
            yield conn

    async def close(self) -> None:
        if self._publisher is not None:
            await self._publisher.stop()
        if self._owns_pool:
            await self._pool.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- publishing ---------------------------------------------------------------------

    async def publish_pending(self) -> int:
        """Publish every committed change not yet on ``lintas.directory``; return the count.

        Raises:
            RuntimeError: the directory was opened with ``publish=False``.
        """
        if self._publisher is None:
            raise RuntimeError("this Directory was opened without a Kafka connection")
        return await self._publisher.publish_pending(self._pool)

    async def run_publisher(self, interval: float = 5.0) -> None:
        """Publish pending changes every ``interval`` seconds until cancelled.

        Long-running services (the portal, the gateway) run this so a change committed
        while Kafka was away reaches ``lintas.directory`` without anyone's help.
        """
        while True:
            try:
                await self.publish_pending()
            except Exception as exc:  # Kafka still away: the rows wait for the next round
                log.warning("directory changes not yet published: %s", exc)
            await asyncio.sleep(interval)

    async def pending_changes(self) -> int:
        """How many committed changes wait to be published."""
        async with self._conn() as conn:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM lintas.dir_changes WHERE published_at IS NULL"
                )
            )

    async def _after_change(self) -> None:
        if self._publisher is None:
            return
        try:
            await self._publisher.publish_pending(self._pool)
            self.last_publish_error = None
        except Exception as exc:  # committed already; it stays in the outbox for later
            self.last_publish_error = exc
            log.warning("directory change committed but not yet published: %s", exc)

    @staticmethod
    async def _emit(conn: Any, key: str, snapshot: Any) -> None:
        await conn.execute(
            "INSERT INTO lintas.dir_changes (entity_key, snapshot) VALUES ($1, $2)", key, snapshot
        )

    # -- helpers --------------------------------------------------------------------------

    @staticmethod
    async def _fetch_entry(
        conn: Any, model: type[E], table: str, column: str, key: str, *, kind: str, lock: bool
    ) -> E:
        """One entry by its key, or NotFound; ``lock`` holds its row for an update."""
        sql = f"SELECT * FROM {table} WHERE {column} = $1" + (" FOR UPDATE" if lock else "")
        row = await conn.fetchrow(sql, key)
        if row is None:
            raise NotFound(kind, key, hint=NOT_FOUND_HINTS[kind])
        return model.model_validate(row_dict(row))

    @staticmethod
    def _changed_entry(
        current: E, changes: Mapping[str, Any], *, kind: str, key: str, fixed: tuple[str, ...]
    ) -> E:
        """``current`` with ``changes`` applied and checked; the ``fixed`` fields may not change."""
        new = parse_entry(type(current), {**current.model_dump(), **changes}, kind=kind)
        problems = [
            Problem(f, "cannot be changed", getattr(new, f))
            for f in fixed
            if getattr(new, f) != getattr(current, f)
        ]
        if problems:
            raise InvalidEntry(kind, key, problems)
        return new

    @staticmethod
    async def _unique(conn: Any, kind: str, table: str, column: str, value: str) -> None:
        if await conn.fetchval(f"SELECT 1 FROM {table} WHERE {column} = $1", value):
            raise AlreadyExists(kind, value, column)

    @staticmethod
    async def _unique_ci(
        conn: Any,
        kind: str,
        table: str,
        column: str,
        value: str,
        *,
        scope: tuple[str, str] | None = None,
    ) -> None:
        sql = f"SELECT 1 FROM {table} WHERE lower({column}) = lower($1)"
        args: list[Any] = [value]
        if scope is not None:
            sql += f" AND {scope[0]} = $2"
            args.append(scope[1])
        if await conn.fetchval(sql, *args):
            raise AlreadyExists(kind, value, column)

"""The directory's API over PostgreSQL: every change one transaction, then published."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Self

import orjson

from lintas.kafka import KafkaConnection
from lintas.postgres import create_pool
from lintas.schemas import Catalog, load_catalog
from lintas.settings import DirectorySettings, Settings

from . import _rules, _secrets
from ._outbox import ChangePublisher
from .exceptions import (
    AlreadyExists,
    ConfirmationRequired,
    InvalidApiKey,
    InvalidEntry,
    NotFound,
    Problem,
)
from .models import (
    ApiKeyInfo,
    Application,
    AppStatus,
    DeliveryMode,
    DirectoryData,
    IntegrationStatus,
    IssuedKey,
    Opd,
    Subscriber,
    SubscriberStatus,
    Subscription,
    parse_entry,
)

__all__ = ["Directory", "entity_key", "key_refusal"]

log = logging.getLogger(__name__)

# A key used this recently counts as in use: revoking the last one needs force.
KEY_IN_USE_WINDOW = dt.timedelta(days=7)
# last_used_at is written at most this often per key, so verification stays a read.
_TOUCH_INTERVAL = dt.timedelta(seconds=60)
DEFAULT_ROTATION_OVERLAP = dt.timedelta(days=7)

_HINTS = {
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


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _init_connection(conn: Any) -> None:
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda v: orjson.dumps(v).decode(),
        decoder=orjson.loads,
        schema="pg_catalog",
    )


def _row_dict(row: Mapping[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    skip = {"created_at", "updated_at", *drop}
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in row.items() if k not in skip}


class Directory:
    """Who is on the platform: OPDs, applications, subscribers, subscriptions.

    Usage::

        async with await Directory.open(settings) as directory:
            app, key = await directory.add_application({...})

    Every change runs in one transaction that also writes the entity's snapshot to the
    outbox; after commit the outbox is published to ``lintas.directory`` (if Kafka is down
    the change is kept and published later, see :meth:`publish_pending`).
    """

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
    ) -> Self:
        """Connect to the directory's database (and Kafka, to publish changes).

        Args:
            settings: the root settings (addresses resolved from them unless given).
            pg_dsn: overrides the resolved database address.
            kafka: overrides the resolved Kafka connection.
            publish: False keeps changes in the outbox (tests, offline imports).
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
            publisher=ChangePublisher(kafka) if publish and kafka is not None else None,
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

    # -- OPDs ---------------------------------------------------------------------------

    async def add_opd(self, data: Opd | Mapping[str, Any]) -> Opd:
        """Add an OPD; ``pemda_name``/``pemda_code`` default to the platform's Pemda."""
        if isinstance(data, Mapping):
            data = {
                "pemda_name": self._settings.pemda_name,
                "pemda_code": self._settings.pemda_code,
                **{k: v for k, v in data.items() if v is not None},
            }
        opd = parse_entry(Opd, data, kind="OPD")
        async with self._tx() as conn:
            await self._unique(conn, "OPD", "lintas.dir_opds", "code", opd.code)
            await self._unique_ci(conn, "OPD", "lintas.dir_opds", "name", opd.name)
            await conn.execute(
                "INSERT INTO lintas.dir_opds (code, name, pemda_name, pemda_code, contact) "
                "VALUES ($1, $2, $3, $4, $5)",
                opd.code,
                opd.name,
                opd.pemda_name,
                opd.pemda_code,
                opd.contact,
            )
            await self._emit(conn, entity_key("opd", opd.code), self._opd_snapshot(opd))
        return opd

    async def update_opd(self, code: str, **changes: Any) -> Opd:
        async with self._tx() as conn:
            current = await self._get_opd(conn, code, lock=True)
            opd = parse_entry(Opd, {**current.model_dump(), **changes}, kind="OPD")
            if opd.code != code:
                raise InvalidEntry("OPD", code, [Problem("code", "cannot be changed", opd.code)])
            if opd.name.lower() != current.name.lower():
                await self._unique_ci(conn, "OPD", "lintas.dir_opds", "name", opd.name)
            await conn.execute(
                "UPDATE lintas.dir_opds SET name=$2, pemda_name=$3, pemda_code=$4, contact=$5, "
                "updated_at=now() WHERE code=$1",
                opd.code,
                opd.name,
                opd.pemda_name,
                opd.pemda_code,
                opd.contact,
            )
            await self._emit(conn, entity_key("opd", opd.code), self._opd_snapshot(opd))
        return opd

    async def get_opd(self, code: str) -> Opd:
        async with self._conn() as conn:
            return await self._get_opd(conn, code)

    async def list_opds(self) -> list[Opd]:
        async with self._conn() as conn:
            rows = await conn.fetch("SELECT * FROM lintas.dir_opds ORDER BY code")
        return [Opd.model_validate(_row_dict(r)) for r in rows]

    async def _get_opd(self, conn: Any, code: str, *, lock: bool = False) -> Opd:
        sql = "SELECT * FROM lintas.dir_opds WHERE code = $1" + (" FOR UPDATE" if lock else "")
        row = await conn.fetchrow(sql, code)
        if row is None:
            raise NotFound("OPD", code, hint=_HINTS["OPD"])
        return Opd.model_validate(_row_dict(row))

    @staticmethod
    def _opd_snapshot(opd: Opd) -> dict[str, Any]:
        return {"kind": "opd", "data": opd.model_dump(mode="json")}

    # -- applications -------------------------------------------------------------------

    async def add_application(
        self, data: Application | Mapping[str, Any], *, issue_key: bool = True
    ) -> tuple[Application, IssuedKey | None]:
        """Register an application and (by default) issue its first API key.

        Returns:
            The application and the new key; the key's token is shown only this once.
        """
        app = parse_entry(Application, data, kind="application")
        async with self._tx() as conn:
            await self._check_application(conn, app)
            await self._unique(conn, "application", "lintas.dir_applications", "id", app.id)
            await self._unique_ci(
                conn,
                "application",
                "lintas.dir_applications",
                "name",
                app.name,
                scope=("opd", app.opd),
            )
            await conn.execute(
                "INSERT INTO lintas.dir_applications (id, name, opd, pse_number, platform, "
                "method, owner_contact, status, produces, kafka_principal) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                app.id,
                app.name,
                app.opd,
                app.pse_number,
                app.platform,
                app.method.value,
                app.owner_contact,
                app.status.value,
                list(app.produces),
                app.kafka_principal,
            )
            await self._emit(conn, entity_key("app", app.id), self._app_snapshot(app))
            issued = await self._issue_key(conn, app.id, None) if issue_key else None
        return app, issued

    async def update_application(self, app_id: str, **changes: Any) -> Application:
        """Change fields of an application (not its id or OPD)."""
        async with self._tx() as conn:
            current = await self._get_app(conn, app_id, lock=True)
            app = parse_entry(Application, {**current.model_dump(), **changes}, kind="application")
            problems = [
                Problem(f, "cannot be changed", getattr(app, f))
                for f in ("id", "opd")
                if getattr(app, f) != getattr(current, f)
            ]
            if problems:
                raise InvalidEntry("application", app_id, problems)
            await self._check_application(conn, app)
            if app.name.lower() != current.name.lower():
                await self._unique_ci(
                    conn,
                    "application",
                    "lintas.dir_applications",
                    "name",
                    app.name,
                    scope=("opd", app.opd),
                )
            await conn.execute(
                "UPDATE lintas.dir_applications SET name=$2, pse_number=$3, platform=$4, "
                "method=$5, owner_contact=$6, status=$7, produces=$8, kafka_principal=$9, "
                "updated_at=now() WHERE id=$1",
                app.id,
                app.name,
                app.pse_number,
                app.platform,
                app.method.value,
                app.owner_contact,
                app.status.value,
                list(app.produces),
                app.kafka_principal,
            )
            await self._emit(conn, entity_key("app", app.id), self._app_snapshot(app))
        return app

    async def retire_application(self, app_id: str) -> Application:
        """Mark an application retired and revoke all its keys."""
        async with self._tx() as conn:
            current = await self._get_app(conn, app_id, lock=True)
            app = current.model_copy(update={"status": AppStatus.RETIRED})
            await conn.execute(
                "UPDATE lintas.dir_applications SET status='retired', updated_at=now() WHERE id=$1",
                app_id,
            )
            await self._emit(conn, entity_key("app", app.id), self._app_snapshot(app))
            await self._revoke(conn, app_id, None)
        return app

    async def get_application(self, app_id: str) -> Application:
        async with self._conn() as conn:
            return await self._get_app(conn, app_id)

    async def list_applications(self, *, opd: str | None = None) -> list[Application]:
        async with self._conn() as conn:
            if opd is not None:
                await self._get_opd(conn, opd)
            rows = await conn.fetch(
                "SELECT * FROM lintas.dir_applications WHERE $1::text IS NULL OR opd = $1 "
                "ORDER BY opd, id",
                opd,
            )
        return [Application.model_validate(_row_dict(r)) for r in rows]

    async def _get_app(self, conn: Any, app_id: str, *, lock: bool = False) -> Application:
        sql = "SELECT * FROM lintas.dir_applications WHERE id = $1" + (
            " FOR UPDATE" if lock else ""
        )
        row = await conn.fetchrow(sql, app_id)
        if row is None:
            raise NotFound("application", app_id, hint=_HINTS["application"])
        return Application.model_validate(_row_dict(row))

    async def _check_application(self, conn: Any, app: Application) -> None:
        problems = []
        if not await conn.fetchval("SELECT 1 FROM lintas.dir_opds WHERE code=$1", app.opd):
            problems.append(
                Problem("opd", "is not a registered OPD (see `lintas opd list`)", app.opd)
            )
        problems += _rules.application_problems(app, self.catalog)
        if problems:
            raise InvalidEntry("application", app.id, problems)

    @staticmethod
    def _app_snapshot(app: Application) -> dict[str, Any]:
        return {"kind": "app", "data": app.model_dump(mode="json")}

    # -- API keys -----------------------------------------------------------------------

    async def issue_key(
        self, app_id: str, *, overlap: dt.timedelta | None = DEFAULT_ROTATION_OVERLAP
    ) -> IssuedKey:
        """Issue a new key (rotation): the app's other keys stay valid for ``overlap``.

        Args:
            overlap: how long existing keys keep working, so the app can switch over;
                None leaves them valid until revoked.
        """
        async with self._tx() as conn:
            app = await self._get_app(conn, app_id, lock=True)
            if app.status is AppStatus.RETIRED:
                raise InvalidEntry(
                    "application",
                    app_id,
                    [Problem("status", "a retired application cannot get keys", "retired")],
                )
            issued = await self._issue_key(conn, app_id, overlap)
        return issued

    async def _issue_key(self, conn: Any, app_id: str, overlap: dt.timedelta | None) -> IssuedKey:
        if overlap is not None:
            rows = await conn.fetch(
                "UPDATE lintas.dir_api_keys SET expires_at = least(coalesce(expires_at, $2), $2) "
                "WHERE app_id = $1 AND revoked_at IS NULL AND "
                "(expires_at IS NULL OR expires_at > now()) RETURNING *",
                app_id,
                _now() + overlap,
            )
            for row in rows:
                await self._emit(conn, entity_key("key", row["id"]), self._key_snapshot(row))
        key_id, token, digest = _secrets.new_api_key()
        row = await conn.fetchrow(
            "INSERT INTO lintas.dir_api_keys (id, app_id, secret_sha256) VALUES ($1, $2, $3) "
            "RETURNING *",
            key_id,
            app_id,
            digest,
        )
        await self._emit(conn, entity_key("key", key_id), self._key_snapshot(row))
        return IssuedKey(app_id=app_id, key_id=key_id, token=token)

    async def revoke_keys(
        self, app_id: str, key_id: str | None = None, *, force: bool = False
    ) -> list[str]:
        """Revoke one key (or all keys) of an application; return the revoked key ids.

        Raises:
            ConfirmationRequired: this would leave an application whose key was used in
                the last 7 days without any key, and ``force`` is False.
            NotFound: no such application, or no such active key of it.
        """
        async with self._tx() as conn:
            await self._get_app(conn, app_id, lock=True)
            keys = await self._keys(conn, app_id)
            now = _now()
            active = [k for k in keys if k.active(now)]
            target = [k for k in active if key_id is None or k.key_id == key_id]
            if key_id is not None and not target:
                raise NotFound(f"active key of {app_id}", key_id, hint="See `lintas apps show`.")
            left = [k for k in active if k not in target]
            recently = [
                k for k in keys if k.last_used_at and now - k.last_used_at < KEY_IN_USE_WINDOW
            ]
            if not left and recently and not force:
                last_used = max(k.last_used_at for k in recently if k.last_used_at)
                raise ConfirmationRequired(
                    f"This revokes the last active key of application {app_id!r}, which was "
                    f"used at {last_used:%Y-%m-%d %H:%M} UTC; its events will be refused "
                    "until it gets a new key."
                )
            revoked = await self._revoke(conn, app_id, key_id)
        return revoked

    async def _revoke(self, conn: Any, app_id: str, key_id: str | None) -> list[str]:
        rows = await conn.fetch(
            "UPDATE lintas.dir_api_keys SET revoked_at = now() WHERE app_id = $1 "
            "AND revoked_at IS NULL AND ($2::text IS NULL OR id = $2) RETURNING *",
            app_id,
            key_id,
        )
        for row in rows:
            await self._emit(conn, entity_key("key", row["id"]), self._key_snapshot(row))
        return [row["id"] for row in rows]

    async def list_keys(self, app_id: str) -> list[ApiKeyInfo]:
        async with self._conn() as conn:
            await self._get_app(conn, app_id)
            return await self._keys(conn, app_id)

    @staticmethod
    async def _keys(conn: Any, app_id: str) -> list[ApiKeyInfo]:
        rows = await conn.fetch(
            "SELECT * FROM lintas.dir_api_keys WHERE app_id = $1 ORDER BY created_at", app_id
        )
        return [
            ApiKeyInfo(
                key_id=r["id"],
                app_id=r["app_id"],
                created_at=r["created_at"],
                expires_at=r["expires_at"],
                revoked_at=r["revoked_at"],
                last_used_at=r["last_used_at"],
            )
            for r in rows
        ]

    async def verify_api_key(self, token: str) -> Application:
        """The application a presented API key belongs to.

        Raises:
            InvalidApiKey: malformed, unknown, revoked or expired key, or a retired app.
        """
        key_id, secret = _secrets.parse_api_key(token)
        async with self._conn() as conn:
            row = await conn.fetchrow(
                "SELECT k.*, a.status AS app_status FROM lintas.dir_api_keys k "
                "JOIN lintas.dir_applications a ON a.id = k.app_id WHERE k.id = $1",
                key_id,
            )
            now = _now()
            refusal = (
                "unknown key"
                if row is None
                else key_refusal(
                    revoked_at=row["revoked_at"],
                    expires_at=row["expires_at"],
                    app_status=row["app_status"],
                    secret_ok=_secrets.secret_matches(secret, row["secret_sha256"]),
                    now=now,
                )
            )
            if refusal is not None:
                raise InvalidApiKey(refusal)
            await self._touch(conn, key_id, row["last_used_at"], now)
            return await self._get_app(conn, row["app_id"])

    async def touch_key(self, key_id: str, at: dt.datetime | None = None) -> None:
        """Record that a key was used (services that verify from the topic call this)."""
        async with self._conn() as conn:
            await conn.execute(
                "UPDATE lintas.dir_api_keys SET last_used_at = $2 WHERE id = $1 "
                "AND (last_used_at IS NULL OR last_used_at < $2)",
                key_id,
                at or _now(),
            )

    @staticmethod
    async def _touch(conn: Any, key_id: str, last: dt.datetime | None, now: dt.datetime) -> None:
        if last is None or now - last > _TOUCH_INTERVAL:
            await conn.execute(
                "UPDATE lintas.dir_api_keys SET last_used_at = $2 WHERE id = $1", key_id, now
            )

    @staticmethod
    def _key_snapshot(row: Mapping[str, Any]) -> dict[str, Any]:
        # The hash lets services verify keys from the topic; the secret never leaves the app.
        def iso(v: dt.datetime | None) -> str | None:
            return v.isoformat() if v else None

        return {
            "kind": "key",
            "data": {
                "key_id": row["id"],
                "app_id": row["app_id"],
                "secret_sha256": bytes(row["secret_sha256"]).hex(),
                "created_at": iso(row["created_at"]),
                "expires_at": iso(row["expires_at"]),
                "revoked_at": iso(row["revoked_at"]),
            },
        }

    # -- subscribers --------------------------------------------------------------------

    async def add_subscriber(
        self, data: Subscriber | Mapping[str, Any]
    ) -> tuple[Subscriber, str | None]:
        """Register a subscriber; a webhook subscriber gets its first signing secret.

        Returns:
            The subscriber and, for webhooks, the signing secret (shown this once; the
            deliverer reads it through :meth:`webhook_secrets`).
        """
        sub = parse_entry(Subscriber, data, kind="subscriber")
        async with self._tx() as conn:
            await self._check_subscriber(conn, sub)
            await self._unique(conn, "subscriber", "lintas.dir_subscribers", "name", sub.name)
            await conn.execute(
                "INSERT INTO lintas.dir_subscribers (name, opd, app_id, mode, webhook_url, "
                "contact, status) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                sub.name,
                sub.opd,
                sub.app_id,
                sub.mode.value,
                sub.webhook_url,
                sub.contact,
                sub.status.value,
            )
            secret = None
            if sub.mode is DeliveryMode.WEBHOOK:
                secret = await self._new_secret(conn, sub.name, None)
            await self._emit_subscriber(conn, sub)
        return sub, secret

    async def update_subscriber(self, name: str, **changes: Any) -> Subscriber:
        """Change a subscriber (delivery, contact, status); a switch to webhook adds a secret
        only through :meth:`rotate_webhook_secret`."""
        async with self._tx() as conn:
            current = await self._get_subscriber(conn, name, lock=True)
            sub = parse_entry(Subscriber, {**current.model_dump(), **changes}, kind="subscriber")
            problems = [
                Problem(f, "cannot be changed", getattr(sub, f))
                for f in ("name", "opd")
                if getattr(sub, f) != getattr(current, f)
            ]
            if problems:
                raise InvalidEntry("subscriber", name, problems)
            await self._check_subscriber(conn, sub)
            await conn.execute(
                "UPDATE lintas.dir_subscribers SET app_id=$2, mode=$3, webhook_url=$4, "
                "contact=$5, status=$6, updated_at=now() WHERE name=$1",
                sub.name,
                sub.app_id,
                sub.mode.value,
                sub.webhook_url,
                sub.contact,
                sub.status.value,
            )
            await self._emit_subscriber(conn, sub)
        return sub

    async def set_subscriber_status(self, name: str, status: SubscriberStatus) -> Subscriber:
        return await self.update_subscriber(name, status=status)

    async def rotate_webhook_secret(
        self, name: str, *, overlap: dt.timedelta | None = DEFAULT_ROTATION_OVERLAP
    ) -> str:
        """A new signing secret; the old ones stay valid for ``overlap`` (receivers accept
        any of the signatures Standard Webhooks sends during the overlap)."""
        async with self._tx() as conn:
            sub = await self._get_subscriber(conn, name, lock=True)
            if sub.mode is not DeliveryMode.WEBHOOK:
                raise InvalidEntry(
                    "subscriber",
                    name,
                    [Problem("mode", "only webhook subscribers have signing secrets", "kafka")],
                )
            secret = await self._new_secret(conn, name, overlap)
            await self._emit_subscriber(conn, sub)
        return secret

    async def webhook_secrets(self, name: str) -> list[str]:
        """The subscriber's valid signing secrets, newest first (for the deliverer)."""
        async with self._conn() as conn:
            await self._get_subscriber(conn, name)
            rows = await conn.fetch(
                "SELECT secret_enc FROM lintas.dir_webhook_secrets WHERE subscriber = $1 "
                "AND (expires_at IS NULL OR expires_at > now()) ORDER BY created_at DESC, id",
                name,
            )
        return [self._box.open(bytes(r["secret_enc"])) for r in rows]

    async def _new_secret(self, conn: Any, name: str, overlap: dt.timedelta | None) -> str:
        if overlap is not None:
            await conn.execute(
                "UPDATE lintas.dir_webhook_secrets SET expires_at = "
                "least(coalesce(expires_at, $2), $2) WHERE subscriber = $1 "
                "AND (expires_at IS NULL OR expires_at > now())",
                name,
                _now() + overlap,
            )
        secret = _secrets.new_webhook_secret()
        await conn.execute(
            "INSERT INTO lintas.dir_webhook_secrets (id, subscriber, secret_enc) "
            "VALUES ($1, $2, $3)",
            _secrets.new_api_key()[0],
            name,
            self._box.seal(secret),
        )
        return secret

    async def get_subscriber(self, name: str) -> Subscriber:
        async with self._conn() as conn:
            return await self._get_subscriber(conn, name)

    async def list_subscribers(self, *, opd: str | None = None) -> list[Subscriber]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT * FROM lintas.dir_subscribers WHERE $1::text IS NULL OR opd = $1 "
                "ORDER BY name",
                opd,
            )
        return [Subscriber.model_validate(_row_dict(r)) for r in rows]

    async def _get_subscriber(self, conn: Any, name: str, *, lock: bool = False) -> Subscriber:
        sql = "SELECT * FROM lintas.dir_subscribers WHERE name = $1" + (
            " FOR UPDATE" if lock else ""
        )
        row = await conn.fetchrow(sql, name)
        if row is None:
            raise NotFound("subscriber", name, hint=_HINTS["subscriber"])
        return Subscriber.model_validate(_row_dict(row))

    async def _check_subscriber(self, conn: Any, sub: Subscriber) -> None:
        problems = []
        if not await conn.fetchval("SELECT 1 FROM lintas.dir_opds WHERE code=$1", sub.opd):
            problems.append(
                Problem("opd", "is not a registered OPD (see `lintas opd list`)", sub.opd)
            )
        if sub.app_id is not None and not await conn.fetchval(
            "SELECT 1 FROM lintas.dir_applications WHERE id=$1", sub.app_id
        ):
            problems.append(Problem("app_id", "is not a registered application", sub.app_id))
        if problems:
            raise InvalidEntry("subscriber", sub.name, problems)

    async def _emit_subscriber(self, conn: Any, sub: Subscriber) -> None:
        # Secret ids (not the secrets) tell the deliverer when to fetch new ones.
        ids = await conn.fetch(
            "SELECT id FROM lintas.dir_webhook_secrets WHERE subscriber=$1 ORDER BY id", sub.name
        )
        snapshot = {
            "kind": "subscriber",
            "data": sub.model_dump(mode="json"),
            "secret_ids": [r["id"] for r in ids],
        }
        await self._emit(conn, entity_key("subscriber", sub.name), snapshot)

    # -- subscriptions ------------------------------------------------------------------

    async def add_subscription(self, data: Subscription | Mapping[str, Any]) -> Subscription:
        sub = parse_entry(Subscription, data, kind="subscription")
        async with self._tx() as conn:
            await self._check_subscription(conn, sub)
            await self._unique(conn, "subscription", "lintas.dir_subscriptions", "name", sub.name)
            await conn.execute(
                "INSERT INTO lintas.dir_subscriptions (name, subscriber, event_types, filter, "
                "fields, purpose, status) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                sub.name,
                sub.subscriber,
                list(sub.event_types),
                sub.filter.model_dump(mode="json"),
                list(sub.fields),
                sub.purpose,
                sub.status.value,
            )
            await self._emit(conn, entity_key("subscription", sub.name), self._sub_snapshot(sub))
        return sub

    async def update_subscription(self, name: str, **changes: Any) -> Subscription:
        async with self._tx() as conn:
            current = await self._get_subscription(conn, name, lock=True)
            sub = parse_entry(
                Subscription, {**current.model_dump(), **changes}, kind="subscription"
            )
            problems = [
                Problem(f, "cannot be changed", getattr(sub, f))
                for f in ("name", "subscriber")
                if getattr(sub, f) != getattr(current, f)
            ]
            if problems:
                raise InvalidEntry("subscription", name, problems)
            await self._check_subscription(conn, sub)
            await conn.execute(
                "UPDATE lintas.dir_subscriptions SET event_types=$2, filter=$3, fields=$4, "
                "purpose=$5, status=$6, updated_at=now() WHERE name=$1",
                sub.name,
                list(sub.event_types),
                sub.filter.model_dump(mode="json"),
                list(sub.fields),
                sub.purpose,
                sub.status.value,
            )
            await self._emit(conn, entity_key("subscription", sub.name), self._sub_snapshot(sub))
        return sub

    async def remove_subscription(self, name: str) -> Subscription:
        async with self._tx() as conn:
            sub = await self._get_subscription(conn, name, lock=True)
            await conn.execute("DELETE FROM lintas.dir_subscriptions WHERE name = $1", name)
            await self._emit(conn, entity_key("subscription", name), None)
        return sub

    async def get_subscription(self, name: str) -> Subscription:
        async with self._conn() as conn:
            return await self._get_subscription(conn, name)

    async def list_subscriptions(self, *, subscriber: str | None = None) -> list[Subscription]:
        async with self._conn() as conn:
            if subscriber is not None:
                await self._get_subscriber(conn, subscriber)
            rows = await conn.fetch(
                "SELECT * FROM lintas.dir_subscriptions WHERE $1::text IS NULL "
                "OR subscriber = $1 ORDER BY name",
                subscriber,
            )
        return [Subscription.model_validate(_row_dict(r)) for r in rows]

    async def _get_subscription(self, conn: Any, name: str, *, lock: bool = False) -> Subscription:
        sql = "SELECT * FROM lintas.dir_subscriptions WHERE name = $1" + (
            " FOR UPDATE" if lock else ""
        )
        row = await conn.fetchrow(sql, name)
        if row is None:
            raise NotFound("subscription", name, hint=_HINTS["subscription"])
        return Subscription.model_validate(_row_dict(row))

    async def _check_subscription(self, conn: Any, sub: Subscription) -> None:
        problems = []
        if not await conn.fetchval(
            "SELECT 1 FROM lintas.dir_subscribers WHERE name=$1", sub.subscriber
        ):
            problems.append(Problem("subscriber", "is not a registered subscriber", sub.subscriber))
        problems += _rules.subscription_problems(sub, self.catalog)
        if problems:
            raise InvalidEntry("subscription", sub.name, problems)

    @staticmethod
    def _sub_snapshot(sub: Subscription) -> dict[str, Any]:
        return {"kind": "subscription", "data": sub.model_dump(mode="json")}

    # -- activity and the integrated indicator ------------------------------------------

    async def record_activity(
        self,
        app_id: str,
        *,
        produced: int = 0,
        received: int = 0,
        at: dt.datetime | None = None,
    ) -> None:
        """Count events an application produced or received (called by the services)."""
        if produced < 0 or received < 0:
            raise ValueError("produced and received must not be negative")
        at = at or _now()
        async with self._conn() as conn:
            await conn.execute(
                "INSERT INTO lintas.dir_activity AS a (app_id, day, produced, received, "
                "last_produced_at, last_received_at) VALUES ($1, ($2::timestamptz AT TIME ZONE "
                "'UTC')::date, $3::bigint, $4::bigint, "
                "CASE WHEN $3::bigint > 0 THEN $2::timestamptz END, "
                "CASE WHEN $4::bigint > 0 THEN $2::timestamptz END) "
                "ON CONFLICT (app_id, day) DO UPDATE SET "
                "produced = a.produced + EXCLUDED.produced, "
                "received = a.received + EXCLUDED.received, "
                "last_produced_at = greatest(a.last_produced_at, EXCLUDED.last_produced_at), "
                "last_received_at = greatest(a.last_received_at, EXCLUDED.last_received_at)",
                app_id,
                at,
                produced,
                received,
            )

    async def integration_report(
        self, *, now: dt.datetime | None = None
    ) -> list[IntegrationStatus]:
        """Every application with its computed status: integrated when it produced or
        received an event within the window (``directory.integrated_window_days``)."""
        now = now or _now()
        since = now - dt.timedelta(days=self._settings.integrated_window_days)
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT a.id, a.opd, a.status, max(x.last_produced_at) AS last_produced_at, "
                "max(x.last_received_at) AS last_received_at, "
                "coalesce(sum(x.produced) FILTER (WHERE x.day >= $1::date), 0) AS produced, "
                "coalesce(sum(x.received) FILTER (WHERE x.day >= $1::date), 0) AS received "
                "FROM lintas.dir_applications a LEFT JOIN lintas.dir_activity x "
                "ON x.app_id = a.id AND x.day <= $2::date GROUP BY a.id ORDER BY a.opd, a.id",
                since,
                now,
            )
        report = []
        for r in rows:
            last = max(
                (t for t in (r["last_produced_at"], r["last_received_at"]) if t), default=None
            )
            integrated = (
                r["status"] != AppStatus.RETIRED and last is not None and since <= last <= now
            )
            report.append(
                IntegrationStatus(
                    app_id=r["id"],
                    opd=r["opd"],
                    status=AppStatus.INTEGRATED if integrated else AppStatus(r["status"]),
                    integrated=integrated,
                    last_produced_at=r["last_produced_at"],
                    last_received_at=r["last_received_at"],
                    produced_in_window=int(r["produced"]),
                    received_in_window=int(r["received"]),
                )
            )
        return report

    # -- whole directory ------------------------------------------------------------------

    async def export_data(self) -> DirectoryData:
        """Everything but secrets and activity, for YAML export and diffs."""
        return DirectoryData(
            opds=tuple(await self.list_opds()),
            applications=tuple(await self.list_applications()),
            subscribers=tuple(await self.list_subscribers()),
            subscriptions=tuple(await self.list_subscriptions()),
        )

    # -- helpers --------------------------------------------------------------------------

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

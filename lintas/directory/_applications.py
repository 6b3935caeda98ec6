"""OPDs, applications and their API keys."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from . import _audit, _rules, _secrets
from ._base import (
    DEFAULT_ROTATION_OVERLAP,
    KEY_IN_USE_WINDOW,
    TOUCH_INTERVAL,
    DirectoryBase,
    entity_key,
    key_refusal,
    row_dict,
    utcnow,
)
from .exceptions import (
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
    IssuedKey,
    Opd,
    parse_entry,
)

__all__ = ["ApplicationsMixin"]


class ApplicationsMixin(DirectoryBase):
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
            opd = self._changed_entry(current, changes, kind="OPD", key=code, fixed=("code",))
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
        return [Opd.model_validate(row_dict(r)) for r in rows]

    async def _get_opd(self, conn: Any, code: str, *, lock: bool = False) -> Opd:
        return await self._fetch_entry(
            conn, Opd, "lintas.dir_opds", "code", code, kind="OPD", lock=lock
        )

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
            app = self._changed_entry(
                current, changes, kind="application", key=app_id, fixed=("id", "opd")
            )
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
            await self._revoke(conn, app_id, None, retired=True)
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
        return [Application.model_validate(row_dict(r)) for r in rows]

    async def _get_app(self, conn: Any, app_id: str, *, lock: bool = False) -> Application:
        return await self._fetch_entry(
            conn,
            Application,
            "lintas.dir_applications",
            "id",
            app_id,
            kind="application",
            lock=lock,
        )

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
                utcnow() + overlap,
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
        await _audit.key_issued(conn, app_id, key_id)
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
            now = utcnow()
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

    async def _revoke(
        self, conn: Any, app_id: str, key_id: str | None, *, retired: bool = False
    ) -> list[str]:
        rows = await conn.fetch(
            "UPDATE lintas.dir_api_keys SET revoked_at = now() WHERE app_id = $1 "
            "AND revoked_at IS NULL AND ($2::text IS NULL OR id = $2) RETURNING *",
            app_id,
            key_id,
        )
        for row in rows:
            await self._emit(conn, entity_key("key", row["id"]), self._key_snapshot(row))
        await _audit.keys_revoked(conn, app_id, [row["id"] for row in rows], retired=retired)
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
            now = utcnow()
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
                at or utcnow(),
            )

    @staticmethod
    async def _touch(conn: Any, key_id: str, last: dt.datetime | None, now: dt.datetime) -> None:
        if last is None or now - last > TOUCH_INTERVAL:
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

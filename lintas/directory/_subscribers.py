"""Subscribers, their webhook secrets, and subscriptions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from . import _audit, _rules, _secrets
from ._base import (
    DEFAULT_ROTATION_OVERLAP,
    DirectoryBase,
    entity_key,
    row_dict,
    utcnow,
)
from .exceptions import (
    InvalidEntry,
    Problem,
)
from .models import (
    DeliveryMode,
    Subscriber,
    SubscriberStatus,
    Subscription,
    parse_entry,
)

__all__ = ["SubscribersMixin"]


class SubscribersMixin(DirectoryBase):
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
            sub = self._changed_entry(
                current, changes, kind="subscriber", key=name, fixed=("name", "opd")
            )
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
                utcnow() + overlap,
            )
        secret = _secrets.new_webhook_secret()
        secret_id = _secrets.new_api_key()[0]
        await conn.execute(
            "INSERT INTO lintas.dir_webhook_secrets (id, subscriber, secret_enc) "
            "VALUES ($1, $2, $3)",
            secret_id,
            name,
            self._box.seal(secret),
        )
        await _audit.webhook_secret_issued(conn, name, secret_id)
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
        return [Subscriber.model_validate(row_dict(r)) for r in rows]

    async def _get_subscriber(self, conn: Any, name: str, *, lock: bool = False) -> Subscriber:
        return await self._fetch_entry(
            conn, Subscriber, "lintas.dir_subscribers", "name", name, kind="subscriber", lock=lock
        )

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
            sub = self._changed_entry(
                current, changes, kind="subscription", key=name, fixed=("name", "subscriber")
            )
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
        return [Subscription.model_validate(row_dict(r)) for r in rows]

    async def _get_subscription(self, conn: Any, name: str, *, lock: bool = False) -> Subscription:
        return await self._fetch_entry(
            conn,
            Subscription,
            "lintas.dir_subscriptions",
            "name",
            name,
            kind="subscription",
            lock=lock,
        )

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

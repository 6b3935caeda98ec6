"""The directory as a value: records of ``lintas.directory`` decoded, applied, queried.

Pure logic without I/O, shared by :class:`~lintas.directory.DirectoryView` (which feeds it
from Kafka) and anything else that reads the topic, such as a faust table's values: decode a
record with :func:`decode_change`, fold changes into a :class:`DirectorySnapshot`, then verify
keys and route events from it.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from . import _secrets
from ._base import key_refusal
from .exceptions import DirectoryError, InvalidApiKey
from .models import (
    Application,
    DirectoryData,
    Opd,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from .routing import Route, matches_type, route

__all__ = [
    "ApiKeyEntry",
    "DirectoryChange",
    "DirectorySnapshot",
    "Entity",
    "EntityKind",
    "MalformedChange",
    "decode_change",
]

# The subscription cache is per snapshot and keyed by event type; event types are a small
# catalog, but the gateway passes caller-supplied ids, so keep the cache bounded.
_ROUTE_CACHE_MAX = 1024


class MalformedChange(DirectoryError):
    """A record on the directory topic that is not a change this reader understands."""

    def __init__(self, key: str | None, reason: str) -> None:
        super().__init__(f"Malformed directory change {key!r}: {reason}.")
        self.key = key
        self.reason = reason


class EntityKind(enum.StrEnum):
    """The prefix of an entity's key on the topic (``opd:dukcapil``), and its ``kind``."""

    OPD = "opd"
    APP = "app"
    KEY = "key"
    SUBSCRIBER = "subscriber"
    SUBSCRIPTION = "subscription"


class ApiKeyEntry(BaseModel):
    """An API key as published: its hash, never its secret; enough to verify a token."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    key_id: str
    app_id: str
    secret_sha256: bytes
    created_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None

    @field_validator("secret_sha256", mode="before")
    @classmethod
    def _from_hex(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                digest = bytes.fromhex(value)
            except ValueError:
                raise ValueError("must be a hex SHA-256 digest") from None
            if len(digest) != 32:
                raise ValueError("must be a SHA-256 digest (64 hex digits)")
            return digest
        return value


Entity = Opd | Application | ApiKeyEntry | Subscriber | Subscription

_MODELS: dict[EntityKind, type[BaseModel]] = {
    EntityKind.OPD: Opd,
    EntityKind.APP: Application,
    EntityKind.KEY: ApiKeyEntry,
    EntityKind.SUBSCRIBER: Subscriber,
    EntityKind.SUBSCRIPTION: Subscription,
}
# The field of each entity that its key names.
_ID_FIELD = {
    EntityKind.OPD: "code",
    EntityKind.APP: "id",
    EntityKind.KEY: "key_id",
    EntityKind.SUBSCRIBER: "name",
    EntityKind.SUBSCRIPTION: "name",
}


@dataclass(frozen=True, slots=True)
class DirectoryChange:
    """One decoded record: an entity's new value, or None when it was removed."""

    key: str
    kind: EntityKind
    name: str
    value: Entity | None
    secret_ids: tuple[str, ...] = field(default=())
    """For a subscriber: ids of its webhook signing secrets (the deliverer refetches them
    from :meth:`Directory.webhook_secrets` when they change)."""


def decode_change(key: bytes | str | None, value: bytes | None) -> DirectoryChange:
    """Decode one record of ``lintas.directory``.

    Args:
        key: the entity key, e.g. ``app:siak``.
        value: the JSON snapshot ``{"kind": ..., "data": {...}}``, or None (a tombstone).

    Raises:
        MalformedChange: the record is not a change of a known kind, naming what is wrong.
    """
    if isinstance(key, bytes):
        try:
            key = key.decode()
        except UnicodeDecodeError:
            raise MalformedChange(None, "the key is not UTF-8") from None
    if not key:
        raise MalformedChange(None, "the record has no key (expected <kind>:<name>)")
    prefix, sep, name = key.partition(":")
    if not sep or not name:
        raise MalformedChange(key, "the key must be <kind>:<name>")
    try:
        kind = EntityKind(prefix)
    except ValueError:
        known = ", ".join(k.value for k in EntityKind)
        raise MalformedChange(key, f"unknown kind {prefix!r} (expected one of {known})") from None
    if value is None:
        return DirectoryChange(key, kind, name, None)
    try:
        snapshot = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise MalformedChange(key, f"the value is not JSON ({exc})") from None
    if not isinstance(snapshot, dict) or not isinstance(snapshot.get("data"), dict):
        raise MalformedChange(key, 'the value must be {"kind": ..., "data": {...}}')
    if snapshot.get("kind") != kind.value:
        raise MalformedChange(key, f"kind {snapshot.get('kind')!r} does not match the key")
    model = _MODELS[kind]
    # A newer publisher may add fields; an older reader ignores them rather than dropping the
    # entity, so services can be upgraded after the directory (the entries forbid extras).
    data = {k: v for k, v in snapshot["data"].items() if k in model.model_fields}
    try:
        entity: Any = model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "data"
        raise MalformedChange(key, f"data.{where}: {first['msg']}") from None
    if getattr(entity, _ID_FIELD[kind]) != name:
        raise MalformedChange(key, f"data.{_ID_FIELD[kind]} does not match the key")
    secret_ids = snapshot.get("secret_ids") or ()
    if not isinstance(secret_ids, list | tuple) or not all(isinstance(s, str) for s in secret_ids):
        raise MalformedChange(key, "secret_ids must be a list of strings")
    return DirectoryChange(key, kind, name, entity, tuple(secret_ids))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class DirectorySnapshot:
    """The whole directory at one point of the topic; immutable, so readers never lock.

    A new snapshot replaces the old one for each batch of changes; a reader that holds one
    keeps a consistent picture even while the view moves on.
    """

    __slots__ = (
        "_routes",
        "api_keys",
        "applications",
        "opds",
        "subscribers",
        "subscriptions",
        "webhook_secret_ids",
    )

    def __init__(
        self,
        *,
        opds: Mapping[str, Opd] | None = None,
        applications: Mapping[str, Application] | None = None,
        api_keys: Mapping[str, ApiKeyEntry] | None = None,
        subscribers: Mapping[str, Subscriber] | None = None,
        subscriptions: Mapping[str, Subscription] | None = None,
        webhook_secret_ids: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.opds: Mapping[str, Opd] = dict(opds or {})
        self.applications: Mapping[str, Application] = dict(applications or {})
        self.api_keys: Mapping[str, ApiKeyEntry] = dict(api_keys or {})
        self.subscribers: Mapping[str, Subscriber] = dict(subscribers or {})
        self.subscriptions: Mapping[str, Subscription] = dict(subscriptions or {})
        self.webhook_secret_ids: Mapping[str, tuple[str, ...]] = dict(webhook_secret_ids or {})
        self._routes: dict[str, tuple[Subscription, ...]] = {}

    def applied(self, changes: Iterable[DirectoryChange]) -> DirectorySnapshot:
        """A new snapshot with ``changes`` applied in order (a None value removes)."""
        tables: dict[EntityKind, dict[str, Any]] = {
            EntityKind.OPD: dict(self.opds),
            EntityKind.APP: dict(self.applications),
            EntityKind.KEY: dict(self.api_keys),
            EntityKind.SUBSCRIBER: dict(self.subscribers),
            EntityKind.SUBSCRIPTION: dict(self.subscriptions),
        }
        secret_ids = dict(self.webhook_secret_ids)
        for change in changes:
            table = tables[change.kind]
            if change.value is None:
                table.pop(change.name, None)
            else:
                table[change.name] = change.value
            if change.kind is EntityKind.SUBSCRIBER:
                if change.value is None:
                    secret_ids.pop(change.name, None)
                else:
                    secret_ids[change.name] = change.secret_ids
        return DirectorySnapshot(
            opds=tables[EntityKind.OPD],
            applications=tables[EntityKind.APP],
            api_keys=tables[EntityKind.KEY],
            subscribers=tables[EntityKind.SUBSCRIBER],
            subscriptions=tables[EntityKind.SUBSCRIPTION],
            webhook_secret_ids=secret_ids,
        )

    def verify_api_key(self, token: str, *, now: dt.datetime | None = None) -> Application:
        """The application a presented API key belongs to (the rule of Directory's own).

        Raises:
            InvalidApiKey: malformed, unknown, revoked or expired key, or a retired app.
        """
        key_id, secret = _secrets.parse_api_key(token)
        key = self.api_keys.get(key_id)
        app = None if key is None else self.applications.get(key.app_id)
        if key is None or app is None:
            raise InvalidApiKey("unknown key")
        refusal = key_refusal(
            revoked_at=key.revoked_at,
            expires_at=key.expires_at,
            app_status=app.status,
            secret_ok=_secrets.secret_matches(secret, key.secret_sha256),
            now=now or _now(),
        )
        if refusal is not None:
            raise InvalidApiKey(refusal)
        return app

    def subscriptions_for(self, event_type_id: str) -> tuple[Subscription, ...]:
        """Active subscriptions naming ``event_type_id``, of active subscribers, by name."""
        cached = self._routes.get(event_type_id)
        if cached is not None:
            return cached
        found = tuple(
            sub
            for _, sub in sorted(self.subscriptions.items())
            if sub.status is SubscriptionStatus.ACTIVE
            and self._subscriber_active(sub.subscriber)
            and matches_type(sub, event_type_id)
        )
        if len(self._routes) >= _ROUTE_CACHE_MAX:
            self._routes.clear()
        self._routes[event_type_id] = found
        return found

    def _subscriber_active(self, name: str) -> bool:
        subscriber = self.subscribers.get(name)
        return subscriber is not None and subscriber.status is SubscriberStatus.ACTIVE

    def route(self, event_type_id: str, record: Mapping[str, Any]) -> list[Route]:
        """Each subscription the event matches, with the fields its subscriber receives."""
        return route(self.subscriptions_for(event_type_id), event_type_id, record)

    def to_data(self) -> DirectoryData:
        """The directory without keys, ordered as :meth:`Directory.export_data` orders it."""
        return DirectoryData(
            opds=tuple(self.opds[k] for k in sorted(self.opds)),
            applications=tuple(sorted(self.applications.values(), key=lambda a: (a.opd, a.id))),
            subscribers=tuple(self.subscribers[k] for k in sorted(self.subscribers)),
            subscriptions=tuple(self.subscriptions[k] for k in sorted(self.subscriptions)),
        )

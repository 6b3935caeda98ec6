"""The directory's entries: what an operator writes, checked field by field.

Rules that need only the entry itself live here as validators; rules that need the rest of
the directory or the catalog (the OPD exists, an event type exists, a field is in the
schema) live in :mod:`lintas.directory._rules`.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from lokal import wilayah
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .exceptions import InvalidEntry, Problem

__all__ = [
    "PSE_NUMBER_PATTERN",
    "ApiKeyInfo",
    "AppStatus",
    "Application",
    "DeliveryMode",
    "DirectoryData",
    "IntegrationMethod",
    "IntegrationStatus",
    "IssuedKey",
    "Opd",
    "Subscriber",
    "SubscriberStatus",
    "Subscription",
    "SubscriptionFilter",
    "SubscriptionStatus",
    "parse_entry",
]

# Kominfo's PSE registration number (Tanda Daftar Penyelenggara Sistem Elektronik), as
# printed on the certificate: sequence[.sub]/DJAI.PSE/month/year, e.g.
# 000123.01/DJAI.PSE/07/2022 (lingkup privat) or 00123/DJAI.PSE/06/2021 (lingkup publik).
PSE_NUMBER_PATTERN = r"^[0-9]{5,6}(\.[0-9]{2})?/DJAI\.PSE/(0[1-9]|1[0-2])/20[0-9]{2}$"
_PSE = re.compile(PSE_NUMBER_PATTERN)
_SLUG = r"^[a-z][a-z0-9-]{1,62}$"
_OPD_CODE = r"^[a-z][a-z0-9_]{1,30}$"
_WILAYAH_PREFIX = re.compile(r"^[0-9]{2}(\.[0-9]{2}(\.[0-9]{2}(\.[0-9]{4})?)?)?$")

Slug = Annotated[str, Field(pattern=_SLUG, description="lowercase letters, digits and '-'")]
Text = Annotated[str, Field(min_length=1, max_length=500)]


class _Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class IntegrationMethod(StrEnum):
    SDK = "sdk"
    GATEWAY = "gateway"
    CAPTURE = "capture"


class AppStatus(StrEnum):
    """Lifecycle of an application. ``integrated`` is computed, never set (see the module doc)."""

    PLANNED = "planned"
    TESTING = "testing"
    INTEGRATED = "integrated"
    RETIRED = "retired"


class DeliveryMode(StrEnum):
    KAFKA = "kafka"
    WEBHOOK = "webhook"


class SubscriberStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    DISABLED = "disabled"


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"


class Opd(_Entry):
    """An Organisasi Perangkat Daerah; its code is the prefix of its topics (``opd.<code>.``)."""

    code: Annotated[str, Field(pattern=_OPD_CODE)]
    name: Text
    pemda_name: Text
    pemda_code: str
    """Kemendagri code of the Pemda: a province (``32``) or a kabupaten/kota (``32.73``)."""
    contact: str | None = None

    @field_validator("pemda_code")
    @classmethod
    def _known_region(cls, value: str) -> str:
        if not re.fullmatch(r"[0-9]{2}(\.[0-9]{2})?", value):
            raise ValueError("must be a Kemendagri province or kabupaten/kota code like 32.73")
        if wilayah.get_wilayah(value) is None:
            raise ValueError("is not a region in the Kemendagri reference")
        return value


class Application(_Entry):
    """An OPD application that produces events."""

    id: Slug
    """Short stable id, part of every event's ``ce_source`` (``/opd/<opd>/<id>``)."""
    name: Text
    opd: str
    pse_number: str | None = None
    """Kominfo PSE registration number; may be empty while the app is planned."""
    platform: str | None = None
    """Language/platform, e.g. ``PHP 7 / MySQL``."""
    method: IntegrationMethod
    owner_contact: str | None = None
    status: AppStatus = AppStatus.PLANNED
    produces: tuple[str, ...] = ()
    """Event type ids (``dukcapil.kematian_dicatat.v1``) of the application's own OPD."""
    kafka_principal: str | None = None

    @field_validator("pse_number")
    @classmethod
    def _pse_format(cls, value: str | None) -> str | None:
        if value is not None and not _PSE.fullmatch(value):
            raise ValueError(
                "must be a Kominfo PSE registration number like 000123.01/DJAI.PSE/07/2022"
            )
        return value

    @field_validator("status")
    @classmethod
    def _not_typed_integrated(cls, value: AppStatus) -> AppStatus:
        if value is AppStatus.INTEGRATED:
            raise ValueError(
                "'integrated' is computed from the platform's metrics (an event produced or "
                "received recently) and cannot be set; use planned, testing or retired"
            )
        return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL with a host, like https://dinsos.example/hook")
    return value


class Subscriber(_Entry):
    """A system that receives events: through its own Kafka topic or a webhook."""

    name: Slug
    opd: str
    app_id: str | None = None
    """The application this subscriber is, if it is one (it then counts as receiving)."""
    mode: DeliveryMode
    webhook_url: str | None = None
    contact: str | None = None
    status: SubscriberStatus = SubscriberStatus.ACTIVE

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @model_validator(mode="after")
    def _url_matches_mode(self) -> Subscriber:
        if self.mode is DeliveryMode.WEBHOOK and self.webhook_url is None:
            raise ValueError("webhook_url: is required when mode is webhook")
        if self.mode is DeliveryMode.KAFKA and self.webhook_url is not None:
            raise ValueError("webhook_url: must be empty when mode is kafka")
        return self

    @property
    def delivery_topic(self) -> str:
        """The subscriber's own topic of routed events (also a webhook's delivery queue)."""
        return f"lintas.deliver.{self.name}"


Scalar = str | int | float | bool | None


class SubscriptionFilter(_Entry):
    """Which events of the subscribed types are delivered: every condition must hold."""

    equals: dict[str, Scalar] = Field(default_factory=dict)
    """Top-level field -> value the event must have."""
    kode_wilayah_prefix: str | None = None
    """Only events whose ``kode_wilayah`` starts with this Kemendagri code (``32.73``)."""

    @field_validator("kode_wilayah_prefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _WILAYAH_PREFIX.fullmatch(value):
            raise ValueError("must be a Kemendagri code like 32, 32.73, 32.73.01 or 32.73.01.1001")
        if wilayah.get_wilayah(value) is None:
            raise ValueError("is not a region in the Kemendagri reference")
        return value

    def is_empty(self) -> bool:
        return not self.equals and self.kode_wilayah_prefix is None


class Subscription(_Entry):
    """What a subscriber receives, why, and which fields of it (data minimisation)."""

    name: Slug
    subscriber: str
    event_types: Annotated[tuple[str, ...], Field(min_length=1)]
    """Event type ids or globs (``dukcapil.*``, ``*.kematian_dicatat.v1``)."""
    filter: SubscriptionFilter = SubscriptionFilter()
    fields: Annotated[tuple[str, ...], Field(min_length=1)]
    """Top-level fields delivered; everything else is dropped. ``*`` delivers every field."""
    purpose: Annotated[str, Field(min_length=10, max_length=2000)]
    """Legal basis and purpose of the processing (UU 27/2022 PDP), free text."""
    status: SubscriptionStatus = SubscriptionStatus.ACTIVE

    @field_validator("fields")
    @classmethod
    def _star_alone(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if "*" in value and len(value) > 1:
            raise ValueError("'*' (every field) cannot be combined with named fields")
        if len(set(value)) != len(value):
            raise ValueError("lists a field twice")
        return value


class IssuedKey(_Entry):
    """A new API key, the only time its secret is visible."""

    app_id: str
    key_id: str
    token: str
    expires_at: dt.datetime | None = None


class ApiKeyInfo(_Entry):
    key_id: str
    app_id: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None

    def active(self, now: dt.datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class IntegrationStatus(_Entry):
    """Whether an application is integrated, and the activity that decides it."""

    app_id: str
    opd: str
    status: AppStatus
    """The stage an operator set, or ``integrated`` when the activity says so."""
    integrated: bool
    last_produced_at: dt.datetime | None
    last_received_at: dt.datetime | None
    produced_in_window: int
    received_in_window: int


class DirectoryData(_Entry):
    """The whole directory, as exported to YAML (no secrets)."""

    opds: tuple[Opd, ...] = ()
    applications: tuple[Application, ...] = ()
    subscribers: tuple[Subscriber, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()


M = TypeVar("M", bound=BaseModel)


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(entry)"


def parse_entry(model: type[M], data: Any, *, kind: str | None = None) -> M:
    """Validate ``data`` as ``model``; every broken rule becomes a :class:`Problem`.

    Raises:
        InvalidEntry: naming each field and its rule.
    """
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            msg = str(err["msg"]).removeprefix("Value error, ")
            field = _field_path(tuple(err["loc"]))
            # Model-level validators name their field in the message ("webhook_url: ...").
            if field == "(entry)" and ": " in msg:
                field, _, msg = msg.partition(": ")
            value = err.get("input") if err["type"] != "missing" else None
            if isinstance(value, dict | list):
                value = None
            problems.append(Problem(field, msg, value))
        key = None
        if isinstance(data, dict):
            key = next((str(data[k]) for k in ("id", "code", "name") if data.get(k)), None)
        raise InvalidEntry(kind or model.__name__.lower(), key, problems) from None

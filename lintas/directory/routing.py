"""Which subscriptions an event matches, and what each subscriber receives of it.

Pure functions over the directory's entries, used by the stream workers (routing), the
deliverer, and ``lintas subscriptions test``: one implementation, so a preview shows exactly
what routing does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Any

from lintas.schemas import Catalog, EventType

from .models import Subscription, SubscriptionStatus

__all__ = [
    "Route",
    "field_names",
    "matched_event_types",
    "matches",
    "matches_type",
    "project",
    "route",
]

KODE_WILAYAH = "kode_wilayah"


def matches_type(subscription: Subscription, event_type_id: str) -> bool:
    """True when one of the subscription's event type globs names ``event_type_id``."""
    return any(fnmatchcase(event_type_id, pattern) for pattern in subscription.event_types)


def matched_event_types(patterns: Iterable[str], catalog: Catalog) -> list[EventType]:
    """Every catalog event type one of ``patterns`` names, in catalog order."""
    pats = tuple(patterns)
    return [et for et in catalog if any(fnmatchcase(et.id, p) for p in pats)]


def field_names(event_type: EventType) -> tuple[str, ...]:
    """The top-level fields of an event type's record."""
    return tuple(f["name"] for f in event_type.schema["fields"])


def _same(actual: Any, expected: Any) -> bool:
    # Records come decoded from Avro (dates, Decimals, enum symbols as str) while filters
    # come from YAML/CLI as scalars, so compare on a common spelling.
    if actual is None or expected is None:
        return actual is expected
    if isinstance(expected, bool) or isinstance(actual, bool):
        return actual is expected if isinstance(actual, bool) else str(actual) == str(expected)
    if isinstance(actual, int | float | Decimal) and isinstance(expected, int | float):
        return Decimal(str(actual)) == Decimal(str(expected))
    if isinstance(actual, dt.date | dt.datetime):
        return actual.isoformat() == str(expected)
    return str(actual) == str(expected)


def matches(subscription: Subscription, event_type_id: str, record: Mapping[str, Any]) -> bool:
    """True when the subscription is active, names the type, and its filter holds."""
    if subscription.status is not SubscriptionStatus.ACTIVE:
        return False
    if not matches_type(subscription, event_type_id):
        return False
    flt = subscription.filter
    for name, expected in flt.equals.items():
        if name not in record or not _same(record[name], expected):
            return False
    if flt.kode_wilayah_prefix is not None:
        code = record.get(KODE_WILAYAH)
        # Kemendagri codes have fixed-width segments, so a prefix is a region and its parts;
        # the dot check stops 32.7 from matching 32.73.
        prefix = flt.kode_wilayah_prefix
        if not isinstance(code, str) or not (code == prefix or code.startswith(prefix + ".")):
            return False
    return True


def project(subscription: Subscription, record: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``record`` the subscriber may receive (data minimisation)."""
    if subscription.fields == ("*",):
        return dict(record)
    return {name: record[name] for name in subscription.fields if name in record}


@dataclass(frozen=True, slots=True)
class Route:
    subscription: Subscription
    payload: dict[str, Any]


def route(
    subscriptions: Iterable[Subscription], event_type_id: str, record: Mapping[str, Any]
) -> list[Route]:
    """Each matching subscription with the payload its subscriber receives."""
    return [
        Route(sub, project(sub, record))
        for sub in subscriptions
        if matches(sub, event_type_id, record)
    ]

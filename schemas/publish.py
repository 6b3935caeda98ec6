"""Check the catalog against a registry and register it: ``lintas schemas check|register``.

Compatibility is checked before anything is registered; one incompatible event type stops
the registration of all (an OPD's CI should fail before half a catalog moves forward).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from .catalog import EventType
from .registry.client import SchemaRegistryClient
from .registry.exceptions import SchemaNotFound, SubjectNotFound

__all__ = ["CatalogCheck", "CheckOutcome", "check_catalog", "register_catalog"]


class CheckOutcome(enum.StrEnum):
    NEW = "new"
    UNCHANGED = "unchanged"
    COMPATIBLE = "compatible"
    INCOMPATIBLE = "incompatible"


@dataclass(frozen=True, kw_only=True)
class CatalogCheck:
    """How one event type's ``.avsc`` compares with its subject in the registry."""

    event_type: EventType
    outcome: CheckOutcome
    level: str
    latest_version: int | None = None
    schema_id: int | None = None
    reasons: list[str] = field(default_factory=list)


async def _check_one(client: SchemaRegistryClient, et: EventType) -> CatalogCheck:
    level = await client.get_compatibility(et.subject, default_to_global=True)
    try:
        latest = await client.get_latest_version(et.subject)
    except SubjectNotFound:
        return CatalogCheck(event_type=et, outcome=CheckOutcome.NEW, level=level)
    try:
        found = await client.lookup_version(et.subject, et.schema_str)
    except (SchemaNotFound, SubjectNotFound):
        found = None
    if found is not None:
        return CatalogCheck(
            event_type=et,
            outcome=CheckOutcome.UNCHANGED,
            level=level,
            latest_version=latest.version,
            schema_id=found.schema_id,
        )
    result = await client.test_compatibility(et.subject, et.schema_str, "latest", verbose=True)
    return CatalogCheck(
        event_type=et,
        outcome=CheckOutcome.COMPATIBLE if result.is_compatible else CheckOutcome.INCOMPATIBLE,
        level=level,
        latest_version=latest.version,
        reasons=list(result.messages),
    )


async def check_catalog(
    client: SchemaRegistryClient, event_types: Iterable[EventType]
) -> list[CatalogCheck]:
    """Compare each event type with the registry's latest version under its level."""
    return [await _check_one(client, et) for et in event_types]


async def register_catalog(
    client: SchemaRegistryClient, event_types: Iterable[EventType]
) -> list[CatalogCheck]:
    """Register every new or changed schema, after checking all of them.

    Returns the checks, with the schema id of each registered or unchanged event type.
    Nothing is registered when any check is ``INCOMPATIBLE``.
    """
    checks = await check_catalog(client, event_types)
    if any(c.outcome is CheckOutcome.INCOMPATIBLE for c in checks):
        return checks
    done: list[CatalogCheck] = []
    for check in checks:
        if check.outcome is CheckOutcome.UNCHANGED:
            done.append(check)
            continue
        schema_id = await client.register(check.event_type.subject, check.event_type.schema_str)
        done.append(
            CatalogCheck(
                event_type=check.event_type,
                outcome=check.outcome,
                level=check.level,
                latest_version=check.latest_version,
                schema_id=schema_id,
            )
        )
    return done

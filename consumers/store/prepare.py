"""Everything the store derives from the catalog, created when a sink starts.

The migrations create what holds data of its own (the raw table, offsets, roles); this step
creates what follows the contracts: the masking functions, the typed table and analytics
view of every event type in the catalog, then the cross-OPD views, which read those tables.
Types the catalog does not know yet get their table when the sink meets their first record.
"""

from __future__ import annotations

import logging
from typing import Any

from lintas.consumers.analytics.views import functions_sql, views_sql
from lintas.schemas import Catalog, EventType

from .ddl import TableShape, shape_of
from .exceptions import SchemaConflict
from .rows import PAYLOAD_FIELD
from .tables import DDL_LOCK, ensure_table

__all__ = ["catalog_shape", "prepare_store"]

log = logging.getLogger("lintas.consumers.store")


def catalog_shape(event_type: EventType) -> TableShape:
    """The typed table of a catalog event type (as if its canonical schema wrapped it)."""
    wrapper = {
        "type": "record",
        "name": "Catalog",
        "namespace": "id.lintas.store",
        "fields": [{"name": PAYLOAD_FIELD, "type": event_type.schema}],
    }
    return shape_of(
        event_type.id,
        wrapper,
        extra_pii=event_type.pii_fields,
        subject_field=event_type.subject_field,
    )


async def prepare_store(conn: Any, *, catalog: Catalog, timezone: str) -> list[SchemaConflict]:
    """Create the catalog's typed tables and the analytics schema's functions and views.

    Idempotent; safe with several sinks starting at once (DDL takes an advisory lock).

    Args:
        conn: a store connection (:func:`~lintas.consumers.store.connection.connect_store`).
        catalog: the event types to create tables for.
        timezone: the display time zone the views count days in.

    Returns:
        The event types whose table cannot follow the catalog's schema (logged; their
        sink stops when it meets their records).
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", DDL_LOCK)
        await conn.execute(functions_sql())
    conflicts = []
    for event_type in catalog:
        try:
            await ensure_table(conn, catalog_shape(event_type))
        except SchemaConflict as exc:
            log.error("store: %s", exc)
            conflicts.append(exc)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", DDL_LOCK)
        await conn.execute(views_sql(timezone))
    return conflicts

"""Typed tables as the database has them, changed to fit new writer schemas.

:func:`ensure_table` is the one place DDL runs: under a transaction-scoped advisory
lock (several sinks may see a new schema version at once), it reads the table from the
catalog, creates or evolves it (:mod:`.ddl`), records what the analytics views need to mask
(``store.event_types``) and replaces the table's analytics view.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from lintas.consumers.analytics.views import ANALYST_ROLES, type_view_sql

from .connection import is_data_error
from .ddl import (
    STORE_SCHEMA,
    ExistingColumn,
    TableShape,
    alter_table_sql,
    create_table_sql,
    plan_evolution,
    quote_ident,
)

__all__ = ["DDL_LOCK", "ensure_table", "read_columns"]

log = logging.getLogger("lintas.consumers.store")

# Any constant works as long as every Lintas process uses the same one; it differs from
# the migrations' lock so that a sink can change tables while migrations wait.
DDL_LOCK = 0x4C494E5453544F

_SYMBOL = re.compile(r"'((?:[^']|'')*)'::text")

_COLUMNS_SQL = """
SELECT a.attname AS name,
       format_type(a.atttypid, a.atttypmod) AS sql_type,
       (SELECT pg_get_constraintdef(c.oid)
          FROM pg_constraint c
         WHERE c.conrelid = a.attrelid AND c.contype = 'c'
           AND c.conkey = ARRAY[a.attnum]::smallint[]
         LIMIT 1) AS check_def
  FROM pg_attribute a
 WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum
"""

_UPSERT_TYPE_SQL = """
INSERT INTO store.event_types AS t (event_type, table_name, subject_pii, pii_columns, pii_keys)
VALUES ($1, $2, $3, $4::jsonb, $5::text[])
ON CONFLICT (event_type) DO UPDATE SET
    subject_pii = coalesce(EXCLUDED.subject_pii, t.subject_pii),
    pii_columns = t.pii_columns || EXCLUDED.pii_columns,
    pii_keys = ARRAY(
        SELECT DISTINCT k FROM unnest(t.pii_keys || EXCLUDED.pii_keys) AS k ORDER BY k
    ),
    updated_at = now()
RETURNING pii_columns
"""


async def read_columns(conn: Any, table: str) -> dict[str, ExistingColumn]:
    """The columns of ``store.<table>`` in table order (empty when it does not exist)."""
    rows = await conn.fetch(_COLUMNS_SQL, f"{STORE_SCHEMA}.{quote_ident(table)}")
    columns = {}
    for row in rows:
        check = row["check_def"]
        symbols = frozenset(s.replace("''", "'") for s in _SYMBOL.findall(check)) if check else None
        columns[row["name"]] = ExistingColumn(row["name"], row["sql_type"], symbols)
    return columns


def _pii_columns(shape: TableShape) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for col in shape.columns:
        if col.pii:
            found[col.name] = col.pii
        elif col.nested_pii:
            found[col.name] = dict(col.nested_pii)
    return found


async def ensure_table(conn: Any, shape: TableShape) -> tuple[str, ...]:
    """Create or evolve the typed table of ``shape``; refresh its view and masking info.

    Args:
        conn: a store connection, not inside a transaction.
        shape: the table the writer schema needs.

    Returns:
        The table's column names afterwards, in table order.

    Raises:
        SchemaConflict: the table cannot follow the schema; nothing was changed.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", DDL_LOCK)
        existing = await read_columns(conn, shape.table)
        if existing:
            statements = alter_table_sql(shape, plan_evolution(shape, existing))
        else:
            plan_evolution(shape, {})  # the same checks of names as for a new version
            statements = create_table_sql(shape)
        for statement in statements:
            await conn.execute(statement)
        if statements:
            log.info("store: %s %s", "evolved" if existing else "created", shape.qualified)
            existing = await read_columns(conn, shape.table)
        pii = _pii_columns(shape)
        merged: Mapping[str, Any] = await conn.fetchval(
            _UPSERT_TYPE_SQL,
            shape.event_type,
            shape.table,
            shape.subject_pii,
            pii,
            sorted(pii),
        )
        columns = [(c.name, c.sql_type) for c in existing.values()]
        view = type_view_sql(shape.table, columns, merged)
        try:
            async with conn.transaction():
                await conn.execute(view)
        except Exception as exc:
            if not is_data_error(exc):
                raise
            # A column was changed by hand: the view cannot be replaced, only re-created.
            await conn.execute(f"DROP VIEW IF EXISTS analytics.{quote_ident(shape.table)}")
            await conn.execute(view)
        roles = ", ".join(ANALYST_ROLES)
        await conn.execute(f"GRANT SELECT ON analytics.{quote_ident(shape.table)} TO {roles}")
    return tuple(existing)

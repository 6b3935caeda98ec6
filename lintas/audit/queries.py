"""Reading the audit log: what the portal's audit page and the tests ask."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["LoggedEntry", "list_entries", "source_counts"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedEntry:
    """One stored entry.

    Attributes:
        id: its position in the log (increasing).
        at: when it was recorded (for pgaudit: when the server logged the statement).
        source: ``platform`` (recorded by Lintas) or ``pgaudit`` (imported from the server).
    """

    id: int
    at: dt.datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any]
    source: str


def _entry(row: Any) -> LoggedEntry:
    details = row["details"]
    return LoggedEntry(
        id=row["id"],
        at=row["at"],
        actor=row["actor"],
        action=row["action"],
        target=row["target"],
        details=orjson.loads(details) if isinstance(details, str | bytes) else dict(details),
        source=row["source"],
    )


async def list_entries(
    conn: Any,
    *,
    actions: Sequence[str] = (),
    actor: str | None = None,
    source: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[LoggedEntry]:
    """The newest entries first (by when they happened), filtered.

    Args:
        conn: a connection or pool of the platform's database.
        actions: only these actions; a value ending in ``.`` matches a group
            (``api_key.`` is every API key action).
        actor: only this actor (exact).
        source: only ``platform`` or ``pgaudit`` entries.
        before_id: only entries older than this one (the next page: the last id shown).
        limit: at most this many.
    """
    exact = [a for a in actions if not a.endswith(".")]
    groups = [a + "%" for a in actions if a.endswith(".")]
    rows = await conn.fetch(
        "SELECT id, at, actor, action, target, details::text AS details, source "
        "FROM lintas.audit_log "
        "WHERE (cardinality($1::text[]) = 0 AND cardinality($2::text[]) = 0 "
        "       OR action = ANY($1::text[]) OR action LIKE ANY($2::text[])) "
        "AND ($3::text IS NULL OR actor = $3) AND ($4::text IS NULL OR source = $4) "
        "AND ($5::bigint IS NULL OR (at, id) < (SELECT at, id FROM lintas.audit_log "
        "                                       WHERE id = $5)) "
        "ORDER BY at DESC, id DESC LIMIT $6",
        exact,
        groups,
        actor,
        source,
        before_id,
        limit,
    )
    return [_entry(r) for r in rows]


async def source_counts(conn: Any) -> dict[str, int]:
    """How many entries each source holds."""
    rows = await conn.fetch("SELECT source, count(*) AS n FROM lintas.audit_log GROUP BY source")
    return {r["source"]: int(r["n"]) for r in rows}

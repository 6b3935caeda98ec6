"""``lintas query``: one SQL statement as an analyst, printed as a table, CSV or JSON.

Nothing here decides what an analyst may do: the statement runs in a session of a login
with an analyst role (:mod:`.logins`), and the database refuses what the role may not do,
writes included (``permission denied for table ...``). One statement per call: it is sent
as a prepared statement, which the server refuses to split.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any
from zoneinfo import ZoneInfo

import asyncpg
import orjson

from lintas.audit import AuditAction, AuditLog

from .exceptions import QueryRefused

__all__ = ["OutputFormat", "QueryAudit", "QueryResult", "render", "run_query"]


class OutputFormat(enum.StrEnum):
    """How ``lintas query`` prints rows."""

    TABLE = "table"
    CSV = "csv"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Column names and rows of a query (rows as tuples, in column order)."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryAudit:
    """Where a statement is recorded before it runs, and as which login it runs.

    Attributes:
        log: the platform's audit log (the analyst's own login cannot write it).
        login: the database login the statement runs as (``lintas_query``).
        pii: whether that login may see personal data unmasked.
    """

    log: AuditLog
    login: str
    pii: bool


async def run_query(conn: Any, sql: str, *, audit: QueryAudit | None = None) -> QueryResult:
    """Run one statement and fetch all its rows.

    Args:
        conn: an analyst's connection.
        sql: one statement.
        audit: record the statement (who, when, the SQL text) before it runs; a statement
            that cannot be recorded is not run.

    Raises:
        QueryRefused: the database refused it (rights, syntax, timeout, ...), with its
            message and SQLSTATE.
        AuditUnavailable: ``audit`` is given and the entry could not be written.
    """
    if audit is not None:
        # Before it runs: a refused or cancelled statement is an access attempt as well.
        details = {"sql": sql, "pii": audit.pii}
        await audit.log.record(None, AuditAction.ANALYST_QUERY, f"login:{audit.login}", details)
    try:
        statement = await conn.prepare(sql)
        columns = tuple(attr.name for attr in statement.get_attributes())
        rows = await statement.fetch()
    except asyncpg.PostgresError as exc:
        raise QueryRefused(
            str(getattr(exc, "sqlstate", "") or "?"),
            str(getattr(exc, "message", "") or exc),
            detail=getattr(exc, "detail", None),
            hint=getattr(exc, "hint", None),
        ) from exc
    return QueryResult(columns, [tuple(row) for row in rows])


def _text(value: Any, zone: ZoneInfo) -> str:
    """A value as text for tables and CSV: times in the display zone, JSON as JSON."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return (value.astimezone(zone) if value.tzinfo else value).isoformat(sep=" ")
    if isinstance(value, dict | list):
        return orjson.dumps(value, default=lambda v: _json_value(v, zone)).decode()
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    return str(value)


def _json_value(value: Any, zone: ZoneInfo) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))  # exact, scale kept: 750000.00
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dt.datetime):
        return (value.astimezone(zone) if value.tzinfo else value).isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def render(result: QueryResult, fmt: OutputFormat, out: IO[str], *, zone: ZoneInfo) -> None:
    """Print ``result`` to ``out`` as ``fmt``.

    Args:
        result: what the query returned.
        fmt: ``table`` (aligned, for people), ``csv`` (with a header row) or ``json`` (an
            array of objects; numbers exact, times ISO 8601 in the display zone).
        out: where to write.
        zone: the display time zone.
    """
    if fmt is OutputFormat.JSON:
        docs = [dict(zip(result.columns, row, strict=True)) for row in result.rows]
        data = orjson.dumps(
            docs,
            default=lambda v: _json_value(v, zone),
            option=orjson.OPT_INDENT_2 | orjson.OPT_PASSTHROUGH_DATETIME,
        )
        out.write(data.decode() + "\n")
    elif fmt is OutputFormat.CSV:
        writer = csv.writer(out)
        writer.writerow(result.columns)
        writer.writerows([_text(v, zone) for v in row] for row in result.rows)
    else:
        _table(result, out, zone)


def _table(result: QueryResult, out: IO[str], zone: ZoneInfo) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*result.columns, show_lines=False, highlight=False)
    for row in result.rows:
        table.add_row(*(_cell(v, zone) for v in row))
    console = Console(file=out, soft_wrap=False, width=_width(result.columns, result.rows))
    console.print(table)
    console.print(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})")


def _cell(value: Any, zone: ZoneInfo) -> str:
    from rich.markup import escape

    return "[dim]NULL[/]" if value is None else escape(_text(value, zone))


def _width(columns: Sequence[str], rows: list[tuple[Any, ...]]) -> int:
    # Wide enough that rich does not fold cells when output goes to a pipe or a file.
    longest = [len(c) for c in columns]
    for row in rows[:200]:
        for i, value in enumerate(row):
            longest[i] = max(longest[i], len(str(value)) if value is not None else 4)
    return max(80, min(sum(longest) + 3 * len(columns) + 4, 1000))

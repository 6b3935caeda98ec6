"""Retention of the merged store: rows past their event type's retention lose their
personal data, or are deleted (``lintas retention run``, and hourly in the store sink).

Per event type (:func:`store_policy`): days from ``LINTAS_RETENTION__EVENT_TYPES``, else
``store_retention_days`` in the ``.avsc``, else ``LINTAS_RETENTION__STORE_DAYS``; counted
from the event time (when it happened), or from when it was stored if it has none.

*Pseudonymise* (the default) keeps what analysis needs (type, OPD, times, region codes,
untagged fields) and removes what identifies a person, as the contract tags it
(``store.event_types``, kept by the sink):

- ``store.raw_events``: the subject, when it is personal data (the NIK of citizen events),
  becomes a keyed pseudonym ``psn:<24 hex>`` (the key is ``lintas.store_secret``, which
  analysts cannot read), ``niks`` is emptied, the tagged keys leave ``payload``, and
  ``pseudonymised_at`` marks the row done;
- the typed table: NIK and family-card numbers become the same pseudonym (one person's
  events can still be counted once), every other tagged column becomes NULL, and the
  tagged keys leave ``jsonb`` columns (``anggota[].nik``), or the column becomes NULL when
  its shape is not that simple.

*Delete* removes the row from the raw table and the typed table.

Rows are changed in batches (``LINTAS_RETENTION__BATCH_ROWS``), one transaction each, so
a large backlog holds no long locks; rows a sink is writing are skipped (``SKIP LOCKED``)
and done at the next run. One run at a time (an advisory lock): a second sink finds the
job busy and leaves it. Audit entries past ``LINTAS_AUDIT__RETENTION_DAYS`` are deleted by
the same run, and each run that changed anything is recorded in the audit log.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from lintas.audit import AuditAction, record
from lintas.settings import RetentionSettings, StoreRetentionAction

from .ddl import STORE_SCHEMA, quote_ident, quote_literal
from .exceptions import RetentionInvalid
from .tables import read_columns

__all__ = [
    "RetentionReport",
    "TypePolicy",
    "TypeResult",
    "run_retention",
    "run_retention_periodically",
    "store_policy",
]

log = logging.getLogger("lintas.consumers.store")

# Any constant works as long as every Lintas process uses the same one.
RETENTION_LOCK = 0x4C494E545245
_PSEUDONYM_KINDS = frozenset({"nik", "nomor_kk"})
_MAX_DAYS = 36_500


@dataclass(frozen=True, slots=True, kw_only=True)
class TypePolicy:
    """How long one event type's rows keep their personal data, and what happens then.

    Attributes:
        source: where the days come from: ``settings``, ``contract`` or ``default``.
    """

    event_type: str
    days: float
    action: StoreRetentionAction
    source: str

    def cutoff(self, now: dt.datetime) -> dt.datetime:
        """Rows whose event happened before this are due."""
        return now - dt.timedelta(days=self.days)


def _contract_days(event_type: Any) -> float | None:
    value = event_type.schema.get("store_retention_days")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RetentionInvalid(event_type.id, value, "it must be a number of days")
    if not 0 < value <= _MAX_DAYS:
        raise RetentionInvalid(event_type.id, value, f"it must be above 0 and at most {_MAX_DAYS}")
    return float(value)


def store_policy(
    settings: RetentionSettings, event_types: Iterable[Any], stored_types: Iterable[str] = ()
) -> dict[str, TypePolicy]:
    """Every event type's store retention: pure, no I/O.

    Args:
        settings: the retention settings.
        event_types: the catalog's event types (``lintas.schemas.EventType``): their
            ``store_retention_days``, if any.
        stored_types: event type ids found in the store (types registered after the
            catalog was loaded get the settings or the default).

    Raises:
        RetentionInvalid: a contract's ``store_retention_days`` is not a sane number.
    """
    policy: dict[str, TypePolicy] = {}
    contracts = {et.id: _contract_days(et) for et in event_types}
    for type_id in sorted(set(contracts) | set(stored_types) | set(settings.event_types)):
        own = settings.event_types.get(type_id)
        contract = contracts.get(type_id)
        if own is not None:
            policy[type_id] = TypePolicy(
                event_type=type_id, days=own.days, action=own.action, source="settings"
            )
        elif contract is not None:
            policy[type_id] = TypePolicy(
                event_type=type_id, days=contract, action=settings.store_action, source="contract"
            )
        else:
            policy[type_id] = TypePolicy(
                event_type=type_id,
                days=settings.store_days,
                action=settings.store_action,
                source="default",
            )
    return policy


@dataclass(frozen=True, slots=True, kw_only=True)
class TypeResult:
    """What a run did (or, dry, would do) to one event type's rows."""

    event_type: str
    action: StoreRetentionAction
    cutoff: dt.datetime
    rows: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionReport:
    """One run: per event type, and the audit entries past their retention."""

    dry_run: bool
    results: tuple[TypeResult, ...] = ()
    audit_entries: int = 0
    busy: bool = False
    """Another run held the job's lock; this one did nothing."""
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def rows(self) -> int:
        return sum(r.rows for r in self.results)


@dataclass(frozen=True, slots=True)
class _StoredType:
    event_type: str
    table: str
    subject_pii: str | None
    pii_columns: Mapping[str, Any]
    pii_keys: Sequence[str]


_PSEUDONYM = (
    "'psn:' || left(encode(sha256(convert_to("
    "(SELECT salt FROM lintas.store_secret) || {value}, 'UTF8')), 'hex'), 24)"
)


def _pseudonym(value: str) -> str:
    return _PSEUDONYM.format(value=value)


def _first_key(path: str) -> str:
    for stop in (".", "[", "{"):
        path = path.split(stop, 1)[0]
    return path


def _nested_cleared(column: str, paths: Mapping[str, str]) -> str:
    """A ``jsonb`` column without the tagged keys of its object or of its array's
    elements; NULL when the tagged data sits deeper or in a map (no key to remove)."""
    object_keys = {_first_key(p[1:]) for p in paths if p.startswith(".")}
    element_keys = {_first_key(p[3:]) for p in paths if p.startswith("[].")}
    if len(object_keys) + len(element_keys) == 0 or (object_keys and element_keys):
        return "NULL"
    if any(not (p.startswith(".") or p.startswith("[].")) for p in paths):
        return "NULL"
    keys = "ARRAY[" + ", ".join(quote_literal(k) for k in sorted(object_keys | element_keys))
    keys += "]::text[]"
    if object_keys:
        return f"CASE WHEN jsonb_typeof({column}) = 'object' THEN {column} - {keys} END"
    return (
        f"CASE WHEN jsonb_typeof({column}) = 'array' THEN (SELECT coalesce(jsonb_agg("
        f"CASE WHEN jsonb_typeof(e.v) = 'object' THEN e.v - {keys} ELSE e.v END ORDER BY e.i), "
        f"'[]'::jsonb) FROM jsonb_array_elements({column}) WITH ORDINALITY AS e(v, i)) END"
    )


def typed_assignments(pii_columns: Mapping[str, Any], sql_types: Mapping[str, str]) -> list[str]:
    """``SET`` items that remove the personal data of a typed table's row.

    Args:
        pii_columns: per column, its kind or the tagged paths below it
            (``store.event_types.pii_columns``).
        sql_types: the table's columns and their types; tagged columns it lacks (a field
            of a later version the table has not seen) are left out.
    """
    items = []
    for name, spec in sorted(pii_columns.items()):
        sql_type = sql_types.get(name)
        if sql_type is None:
            continue
        ref = quote_ident(name)
        if isinstance(spec, str) and spec in _PSEUDONYM_KINDS and sql_type == "text":
            items.append(f"{ref} = CASE WHEN {ref} IS NOT NULL THEN {_pseudonym(ref)} END")
        elif isinstance(spec, Mapping) and spec and sql_type == "jsonb":
            items.append(f"{ref} = {_nested_cleared(ref, spec)}")
        else:
            items.append(f"{ref} = NULL")
    return items


_DUE = (
    "SELECT event_id FROM store.raw_events "
    "WHERE event_type = $1 AND coalesce(event_time, stored_at) < $2 {pending} "
    "ORDER BY coalesce(event_time, stored_at) LIMIT $3 FOR UPDATE SKIP LOCKED"
)
_PENDING = "AND pseudonymised_at IS NULL"


async def _stored_types(conn: Any) -> list[_StoredType]:
    rows = await conn.fetch(
        "SELECT event_type, table_name, subject_pii, pii_columns::text AS pii_columns, "
        "pii_keys FROM store.event_types ORDER BY event_type"
    )
    return [
        _StoredType(
            r["event_type"],
            r["table_name"],
            r["subject_pii"],
            orjson.loads(r["pii_columns"]),
            list(r["pii_keys"]),
        )
        for r in rows
    ]


async def _count_due(conn: Any, stored: _StoredType, policy: TypePolicy, now: dt.datetime) -> int:
    pending = _PENDING if policy.action is StoreRetentionAction.PSEUDONYMISE else ""
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM store.raw_events WHERE event_type = $1 "
            f"AND coalesce(event_time, stored_at) < $2 {pending}",
            stored.event_type,
            policy.cutoff(now),
        )
    )


async def _batch(
    conn: Any,
    stored: _StoredType,
    policy: TypePolicy,
    now: dt.datetime,
    limit: int,
    typed: list[str] | None,
) -> int:
    """One transaction: up to ``limit`` due rows handled; returns how many.

    Args:
        typed: the typed table's ``SET`` items (None: the table does not exist).
    """
    table = f"{STORE_SCHEMA}.{quote_ident(stored.table)}"
    delete = policy.action is StoreRetentionAction.DELETE
    async with conn.transaction():
        due = _DUE.format(pending="" if delete else _PENDING)
        rows = await conn.fetch(due, stored.event_type, policy.cutoff(now), limit)
        ids = [r["event_id"] for r in rows]
        if not ids:
            return 0
        if delete:
            await conn.execute("DELETE FROM store.raw_events WHERE event_id = ANY($1::text[])", ids)
            if typed is not None:
                await conn.execute(f"DELETE FROM {table} WHERE event_id = ANY($1::text[])", ids)
            return len(ids)
        subject = _pseudonym("subject") if stored.subject_pii else "subject"
        await conn.execute(
            f"UPDATE store.raw_events SET subject = {subject}, niks = '{{}}', "
            "payload = payload - $2::text[], pseudonymised_at = now() "
            "WHERE event_id = ANY($1::text[])",
            ids,
            list(stored.pii_keys),
        )
        if typed:
            await conn.execute(
                f"UPDATE {table} SET {', '.join(typed)} WHERE event_id = ANY($1::text[])", ids
            )
        return len(ids)


async def _apply(
    conn: Any, stored: _StoredType, policy: TypePolicy, now: dt.datetime, batch_rows: int
) -> int:
    columns = await read_columns(conn, stored.table)
    typed = (
        typed_assignments(stored.pii_columns, {c.name: c.sql_type for c in columns.values()})
        if columns
        else None
    )
    done = 0
    while True:
        changed = await _batch(conn, stored, policy, now, batch_rows, typed)
        done += changed
        if changed < batch_rows:
            return done


async def run_retention(
    conn: Any,
    policy: Mapping[str, TypePolicy],
    *,
    audit_days: int,
    dry_run: bool = False,
    batch_rows: int = 5000,
    now: dt.datetime | None = None,
) -> RetentionReport:
    """Apply the store's retention once.

    Args:
        conn: a connection of the platform's role, not inside a transaction.
        policy: per event type id (:func:`store_policy`); a stored type missing from it
            is left alone (and logged).
        audit_days: audit entries older than this are deleted (the database refuses
            anything younger than 365 days).
        dry_run: count what is due, change nothing.
        batch_rows: rows per transaction.
        now: the time retention is counted back from (default: now).

    Returns:
        What was done, per event type with due rows. ``busy`` when another run holds
        the job.
    """
    now = now or dt.datetime.now(dt.UTC)
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", RETENTION_LOCK):
        return RetentionReport(dry_run=dry_run, busy=True)
    try:
        results = []
        for stored in await _stored_types(conn):
            rule = policy.get(stored.event_type)
            if rule is None:
                log.warning("retention: no policy for %s; its rows are kept", stored.event_type)
                continue
            if dry_run:
                rows = await _count_due(conn, stored, rule, now)
            else:
                rows = await _apply(conn, stored, rule, now, batch_rows)
            if rows:
                cutoff = rule.cutoff(now)
                results.append(
                    TypeResult(
                        event_type=stored.event_type, action=rule.action, cutoff=cutoff, rows=rows
                    )
                )
        # The database's clock, the one its append-only trigger judges a delete by.
        past = "at < now() - make_interval(days => $1)"
        if dry_run:
            purged = await conn.fetchval(
                f"SELECT count(*) FROM lintas.audit_log WHERE {past}", audit_days
            )
        else:
            deleted = await conn.fetch(
                f"DELETE FROM lintas.audit_log WHERE {past} RETURNING id", audit_days
            )
            purged = len(deleted)
        report = RetentionReport(
            dry_run=dry_run, results=tuple(results), audit_entries=int(purged), at=now
        )
        if not dry_run and (report.rows or report.audit_entries):
            await record(conn, None, AuditAction.RETENTION_APPLIED, "store", _details(report))
        return report
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", RETENTION_LOCK)


def _details(report: RetentionReport) -> dict[str, Any]:
    return {
        "event_types": {
            r.event_type: {"action": r.action.value, "before": r.cutoff, "rows": r.rows}
            for r in report.results
        },
        "audit_entries_deleted": report.audit_entries,
    }


async def run_retention_periodically(
    dsn: str, settings: RetentionSettings, *, audit_days: int, event_types: Iterable[Any]
) -> None:
    """:func:`run_retention` every ``settings.interval_s`` until cancelled (the store
    sink runs this). A failed run is logged and tried again at the next interval."""
    from lintas.postgres import connect

    catalog = list(event_types)
    while True:
        try:
            conn = await connect(dsn, application_name="lintas-retention")
            try:
                rows = await conn.fetch("SELECT event_type FROM store.event_types")
                policy = store_policy(settings, catalog, [r["event_type"] for r in rows])
                report = await run_retention(
                    conn, policy, audit_days=audit_days, batch_rows=settings.batch_rows
                )
            finally:
                await conn.close()
            if report.rows or report.audit_entries:
                log.info(
                    "retention: %d store rows past retention handled, %d audit entries deleted",
                    report.rows,
                    report.audit_entries,
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database away, a bad contract: try again later
            log.warning("retention run failed: %s", exc)
        await asyncio.sleep(settings.interval_s)

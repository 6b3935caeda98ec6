"""pgaudit's records of analysts' SQL, imported from the server's jsonlog into the audit log.

Analysts who connect with psql, DBeaver or Metabase bypass ``lintas query``; pgaudit (a
``shared_preload_libraries`` extension) makes the server log their statements itself:

- *session* audit for every login that is a member of an analyst role (``pgaudit.log``
  set on the login by ``lintas.audit_analyst_logins()``);
- *object* audit of the analytics views for everyone (``pgaudit.role = lintas_auditor``),
  which covers a login whose role-level settings are not there yet.

Why jsonlog: the server writes each record as one JSON object on one line, through the
logging collector, so a multi-line statement cannot be confused with the next record and
records of concurrent sessions never interleave (plain stderr logging gives neither).
The message of a pgaudit record is CSV::

    AUDIT: SESSION,1,1,READ,SELECT,TABLE,analytics.events,"SELECT * FROM analytics.events",<none>

The import keeps, per file, the byte offset it has read up to, in the same transaction as
the entries it adds (:func:`import_pgaudit`), and each entry carries its origin (session,
statement and sub-statement ids): an import that runs twice adds nothing, and the
session and object records of one statement become one entry. Statements and sign-ins of
analyst logins that the server refused (``ERROR``/``FATAL`` lines) are imported too.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ._log import AuditEntry
from .actions import AuditAction
from .exceptions import PgauditLogMissing

__all__ = [
    "ImportReport",
    "ServerLogLine",
    "audit_entries",
    "import_periodically",
    "import_pgaudit",
    "parse_line",
    "pgaudit_log_dir",
]

log = logging.getLogger("lintas.audit")

_PREFIX = "AUDIT: "
# Any constant works as long as every importer uses the same one (two portals at once).
_IMPORT_LOCK = 0x4C494E544155
# Read at most this much per transaction: a large backlog is imported in steps.
_CHUNK_BYTES = 8 * 1024 * 1024
_ANALYSTS_SQL = """
SELECT rolname FROM pg_roles
 WHERE rolcanlogin AND NOT rolsuper
   AND (pg_has_role(oid, 'lintas_analyst', 'MEMBER')
        OR pg_has_role(oid, 'lintas_analyst_pii', 'MEMBER'))
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerLogLine:
    """The fields of one jsonlog record the import uses."""

    at: dt.datetime | None
    user: str
    database: str
    severity: str
    message: str
    session_id: str
    line_num: int
    statement: str | None = None
    application: str | None = None
    remote_host: str | None = None
    state_code: str | None = None


def _timestamp(text: str) -> dt.datetime | None:
    """``2025-11-23 14:02:03.123 UTC``; other zones than UTC give None (the importer then
    keeps the time of the import and the text in the details)."""
    stamp, _, zone = text.rpartition(" ")
    if zone not in ("UTC", "GMT"):
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        try:
            return dt.datetime.strptime(stamp, fmt).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    return None


def parse_line(line: bytes | str) -> ServerLogLine | None:
    """One jsonlog line, or None for a line that is not a JSON object (a torn write)."""
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or "message" not in doc:
        return None
    return ServerLogLine(
        at=_timestamp(str(doc.get("timestamp", ""))),
        user=str(doc.get("user") or ""),
        database=str(doc.get("dbname") or ""),
        severity=str(doc.get("error_severity") or ""),
        message=str(doc["message"]),
        session_id=str(doc.get("session_id") or ""),
        line_num=int(doc.get("line_num") or 0),
        statement=doc.get("statement"),
        application=doc.get("application_name"),
        remote_host=doc.get("remote_host"),
        state_code=doc.get("state_code"),
    )


@dataclass(slots=True)
class _Pending:
    entry: AuditEntry
    at: dt.datetime | None
    objects: list[str] = field(default_factory=list)


def _audit_fields(message: str) -> list[str] | None:
    """The CSV fields of a pgaudit message, or None when it is not one."""
    if not message.startswith(_PREFIX):
        return None
    rows = list(csv.reader([message[len(_PREFIX) :]], strict=False))
    if not rows or len(rows[0]) < 8:
        return None
    return rows[0]


def _base_details(line: ServerLogLine) -> dict[str, Any]:
    details: dict[str, Any] = {"database": line.database, "session": line.session_id}
    if line.application:
        details["application"] = line.application
    if line.remote_host:
        details["client"] = line.remote_host
    return details


def audit_entries(
    lines: Iterable[ServerLogLine], analysts: frozenset[str]
) -> list[tuple[str, dt.datetime | None, AuditEntry]]:
    """The audit entries in ``lines``: (origin, time, entry), one per statement.

    Args:
        lines: parsed jsonlog records, in log order.
        analysts: logins that are members of an analyst role: their statements are
            ``analyst.sql``, anyone else's ``db.sql``; their refused statements and
            sign-ins are ``analyst.sql_refused`` (refusals of other logins are left out).
    """
    pending: dict[str, _Pending] = {}
    for line in lines:
        fields = _audit_fields(line.message)
        actor = f"pg:{line.user or '?'}"
        if fields is not None:
            kind, statement_id, sub_id, klass, command, _otype, obj, statement = fields[:8]
            origin = f"pgaudit:{line.session_id}:{statement_id}:{sub_id}"
            found = pending.get(origin)
            if found is None:
                details = _base_details(line) | {
                    "class": klass,
                    "command": command,
                    "sql": statement,
                    "audit": kind.lower(),
                }
                if len(fields) > 8 and fields[8] not in ("<none>", "<not logged>"):
                    details["parameters"] = fields[8]
                action = AuditAction.ANALYST_SQL if line.user in analysts else AuditAction.DB_SQL
                entry = AuditEntry(
                    action=action, target=obj or command, details=details, actor=actor
                )
                found = pending[origin] = _Pending(entry, line.at)
            if obj and obj not in found.objects:
                found.objects.append(obj)
            continue
        if line.severity in ("ERROR", "FATAL") and line.user in analysts:
            origin = f"pglog:{line.session_id}:{line.line_num}"
            details = _base_details(line) | {
                "error": line.message,
                "sqlstate": line.state_code,
                "sql": line.statement,
            }
            target = "sign-in" if line.severity == "FATAL" else "statement"
            entry = AuditEntry(
                action=AuditAction.ANALYST_SQL_REFUSED, target=target, details=details, actor=actor
            )
            pending[origin] = _Pending(entry, line.at)
    out = []
    for origin, item in pending.items():
        entry = item.entry
        if item.objects:
            entry = AuditEntry(
                action=entry.action,
                target=", ".join(item.objects),
                details=entry.details,
                actor=entry.actor,
            )
        out.append((origin, item.at, entry))
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportReport:
    """What one import did: files looked at, bytes read, entries added."""

    files: int
    bytes_read: int
    entries: int
    logins_configured: int


def pgaudit_log_dir(configured: Path | None, data_dir: Path) -> Path:
    """Where the server's jsonlog files are: configured, else the local stack's."""
    return configured if configured is not None else data_dir / "postgres" / "log"


_INSERT = """
INSERT INTO lintas.audit_log (at, actor, action, target, details, source, origin)
SELECT coalesce(u.at, now()), u.actor, u.action, u.target, u.details::jsonb, 'pgaudit', u.origin
  FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
       AS u(at, actor, action, target, details, origin)
ON CONFLICT (origin) DO NOTHING
RETURNING id
"""


@dataclass(frozen=True, slots=True)
class _Chunk:
    file_id: str
    start: int
    data: bytes
    size: int


def _read_chunk(path: Path, stored_id: str | None, stored_position: int) -> _Chunk | None:
    """The bytes after the stored position (blocking: run off the event loop)."""
    try:
        stat = path.stat()
    except FileNotFoundError:  # rotated away since the directory was listed
        return None
    file_id = f"{stat.st_dev}:{stat.st_ino}"
    start = 0
    if stored_id == file_id:
        # A file shorter than what was read was truncated: read it again from the start.
        start = stored_position if stored_position <= stat.st_size else 0
    if start >= stat.st_size:
        return None
    with path.open("rb") as fh:
        fh.seek(start)
        data = fh.read(min(stat.st_size - start, _CHUNK_BYTES))
    return _Chunk(file_id, start, data, stat.st_size)


async def _import_chunk(conn: Any, path: Path, analysts: frozenset[str]) -> tuple[int, int, bool]:
    """Import the next chunk of one file; returns (bytes read, entries added, more left)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _IMPORT_LOCK)
        stored = await conn.fetchrow(
            "SELECT file_id, position FROM lintas.audit_pgaudit_files WHERE path = $1",
            str(path),
        )
        chunk = await asyncio.to_thread(
            _read_chunk,
            path,
            stored["file_id"] if stored else None,
            int(stored["position"]) if stored else 0,
        )
        if chunk is None:
            return 0, 0, False
        # Only whole lines: the server may be writing the last one right now.
        end = chunk.data.rfind(b"\n") + 1
        if end == 0:
            if len(chunk.data) < _CHUNK_BYTES:
                return 0, 0, False
            # One line longer than a chunk: not a record anyone wrote whole; skip past it
            # rather than stop the import there for good.
            end = len(chunk.data)
        parsed = [p for p in (parse_line(raw) for raw in chunk.data[:end].splitlines()) if p]
        found = audit_entries(parsed, analysts)
        rows = [(at, *entry.row(), origin) for origin, at, entry in found]
        columns = [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * 6
        added = await conn.fetch(_INSERT, *columns)
        await conn.execute(
            "INSERT INTO lintas.audit_pgaudit_files (path, file_id, position) VALUES ($1, $2, $3) "
            "ON CONFLICT (path) DO UPDATE SET file_id = EXCLUDED.file_id, "
            "position = EXCLUDED.position, updated_at = now()",
            str(path),
            chunk.file_id,
            chunk.start + end,
        )
        return end, len(added), chunk.start + end < chunk.size


def _json_files(log_dir: Path) -> list[Path]:
    return sorted(p for p in log_dir.iterdir() if p.suffix == ".json" and p.is_file())


async def import_pgaudit(conn: Any, log_dir: Path) -> ImportReport:
    """Import what the server logged since the last import into the audit log.

    First sets the role-level pgaudit settings on analyst logins that lack them
    (``lintas.audit_analyst_logins()``), so a login granted an analyst role since the last
    run is audited from its next session on.

    Args:
        conn: a connection of the platform's role, not inside a transaction.
        log_dir: the server's ``log_directory``; every ``*.json`` file in it is read.

    Raises:
        PgauditLogMissing: ``log_dir`` does not exist or cannot be listed.
    """
    try:
        files = await asyncio.to_thread(_json_files, log_dir)
    except OSError as exc:
        raise PgauditLogMissing(log_dir, exc.strerror or str(exc)) from exc
    configured = int(await conn.fetchval("SELECT lintas.audit_analyst_logins()") or 0)
    analysts = frozenset(r["rolname"] for r in await conn.fetch(_ANALYSTS_SQL))
    total_bytes = total_entries = 0
    for path in files:
        more = True
        while more:
            read, added, more = await _import_chunk(conn, path, analysts)
            total_bytes += read
            total_entries += added
    return ImportReport(
        files=len(files),
        bytes_read=total_bytes,
        entries=total_entries,
        logins_configured=configured,
    )


async def import_periodically(pool: Any, log_dir: Path, interval_s: float) -> None:
    """:func:`import_pgaudit` every ``interval_s`` seconds until cancelled.

    The audit log then holds an analyst's statement within the interval even if nobody
    opens the audit page, and before the server's log is rotated or shipped away. A
    directory that does not exist (yet) is looked for again at the next round.
    """
    while True:
        if await asyncio.to_thread(log_dir.is_dir):
            try:
                async with pool.acquire() as conn:
                    await import_pgaudit(conn, log_dir)
            except Exception as exc:  # the next round tries again; the page shows the gap
                log.warning("pgaudit import from %s failed: %s", log_dir, exc)
        await asyncio.sleep(interval_s)

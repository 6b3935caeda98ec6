"""pgaudit's records in the server's jsonlog, read into audit entries (no database)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from lintas.audit import AuditAction
from lintas.audit.pgaudit import audit_entries, parse_line

ANALYSTS = frozenset({"budi"})


def _line(message: str, *, user: str = "budi", severity: str = "LOG", **extra: Any) -> bytes:
    doc = {
        "timestamp": "2025-11-23 07:02:03.125 UTC",
        "user": user,
        "dbname": "lintas",
        "pid": 4761,
        "remote_host": "10.1.2.3",
        "session_id": "6b044b03.1299",
        "line_num": extra.pop("line_num", 1),
        "error_severity": severity,
        "message": message,
        "application_name": "DBeaver 24.1",
        **extra,
    }
    return orjson.dumps(doc)


def _parsed(*lines: bytes) -> list[Any]:
    parsed = [parse_line(raw) for raw in lines]
    return [p for p in parsed if p is not None]


def test_a_session_record_becomes_one_entry_with_its_sql_and_time() -> None:
    sql = "SELECT nik, nama\n  FROM analytics.citizen_timeline\n WHERE nik = '3273015209680002'"
    message = f'AUDIT: SESSION,1,1,READ,SELECT,,,"{sql}",<none>'
    [(origin, at, entry)] = audit_entries(_parsed(_line(message)), ANALYSTS)
    assert origin == "pgaudit:6b044b03.1299:1:1"
    assert at == dt.datetime(2025, 11, 23, 7, 2, 3, 125000, tzinfo=dt.UTC)
    assert entry.actor == "pg:budi"
    assert entry.action is AuditAction.ANALYST_SQL
    assert entry.details["sql"] == sql  # newlines and quotes survive the CSV
    assert entry.details["class"] == "READ" and entry.details["application"] == "DBeaver 24.1"
    assert "parameters" not in entry.details


def test_session_and_object_records_of_one_statement_are_one_entry_naming_the_objects() -> None:
    sql = "SELECT * FROM analytics.events e JOIN analytics.daily_counts d USING (opd)"
    lines = [
        _line(f'AUDIT: SESSION,4,1,READ,SELECT,,,"{sql}",<none>', line_num=1),
        _line(f'AUDIT: OBJECT,4,1,READ,SELECT,VIEW,analytics.events,"{sql}",<none>', line_num=2),
        _line(
            f'AUDIT: OBJECT,4,1,READ,SELECT,VIEW,analytics.daily_counts,"{sql}",<none>',
            line_num=3,
        ),
    ]
    [(_, _, entry)] = audit_entries(_parsed(*lines), ANALYSTS)
    assert entry.target == "analytics.events, analytics.daily_counts"


def test_parameters_are_kept_and_other_logins_are_db_sql() -> None:
    message = "AUDIT: OBJECT,2,1,READ,SELECT,VIEW,analytics.events,SELECT $1,3273015209680002"
    [(_, _, entry)] = audit_entries(_parsed(_line(message, user="lintas")), ANALYSTS)
    assert entry.action is AuditAction.DB_SQL and entry.actor == "pg:lintas"
    assert entry.details["parameters"] == "3273015209680002"


def test_refusals_of_analysts_are_kept_and_of_others_not() -> None:
    denied = _line(
        "permission denied for schema store",
        severity="ERROR",
        statement="SELECT * FROM store.raw_events",
        state_code="42501",
        line_num=7,
    )
    login = _line('password authentication failed for user "budi"', severity="FATAL", line_num=1)
    other = _line("syntax error", user="lintas", severity="ERROR", statement="SELEC 1")
    found = audit_entries(_parsed(denied, login, other), ANALYSTS)
    assert [(o, e.action, e.target) for o, _, e in found] == [
        ("pglog:6b044b03.1299:7", AuditAction.ANALYST_SQL_REFUSED, "statement"),
        ("pglog:6b044b03.1299:1", AuditAction.ANALYST_SQL_REFUSED, "sign-in"),
    ]
    assert found[0][2].details["sql"] == "SELECT * FROM store.raw_events"
    assert found[0][2].details["sqlstate"] == "42501"


def test_ordinary_log_lines_and_torn_lines_are_no_entries() -> None:
    lines = [
        _line("checkpoint complete", user=""),
        b'{"timestamp": "2025-11-23 07:02:03.125 UTC", "mess',
        b"",
        b"[1, 2]",
    ]
    assert audit_entries(_parsed(*lines), ANALYSTS) == []


def test_a_server_logging_in_another_zone_gives_no_time() -> None:
    parsed = parse_line(_line("AUDIT: SESSION,1,1,READ,SELECT,,,SELECT 1,<none>"))
    assert parsed is not None and parsed.at is not None
    other = orjson.loads(_line("x"))
    other["timestamp"] = "2025-11-23 14:02:03.125 WIB"
    assert (p := parse_line(orjson.dumps(other))) is not None and p.at is None

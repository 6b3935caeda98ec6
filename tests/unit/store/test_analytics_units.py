"""Analyst access without a database: view masking, output formats, provisioned logins."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import io
import json
from decimal import Decimal
from zoneinfo import ZoneInfo

from lintas.consumers.analytics import (
    OutputFormat,
    QueryResult,
    derived_password,
    functions_sql,
    render,
    type_view_sql,
    views_sql,
)
from lintas.consumers.analytics.logins import scram_verifier, with_credentials

WIB = ZoneInfo("Asia/Jakarta")


def test_type_views_mask_each_kind_of_tagged_column() -> None:
    sql = type_view_sql(
        "dukcapil_kk_diperbarui_v1",
        [
            ("event_id", "text"),
            ("nik", "text"),
            ("tanggal_lahir", "date"),
            ("anggota", "jsonb"),
            ("kode_wilayah", "text"),
        ],
        {
            "nik": "nik",
            "tanggal_lahir": "tanggal_lahir",
            "anggota": {"[].nik": "nik", "[].nama": "nama"},
        },
    )
    assert sql.startswith('CREATE OR REPLACE VIEW analytics."dukcapil_kk_diperbarui_v1"')
    assert """analytics.pii_text(t."nik", 'nik') AS "nik\"""" in sql
    assert (
        """CASE WHEN analytics.pii_allowed() THEN t."tanggal_lahir" END AS "tanggal_lahir\""""
        in sql
    )
    assert "e.v - ARRAY['nama', 'nik']::text[] ORDER BY e.i" in sql
    assert 't."kode_wilayah" AS "kode_wilayah"' in sql and 't."event_id" AS "event_id"' in sql


def test_records_lose_their_tagged_keys_and_maps_are_hidden() -> None:
    sql = type_view_sql(
        "x_y_v1",
        [("alamat", "jsonb"), ("data", "jsonb")],
        {"alamat": {".jalan": "alamat"}, "data": {"{}.nik": "nik"}},
    )
    assert """t."alamat" - ARRAY['jalan']::text[]""" in sql
    assert """CASE WHEN analytics.pii_allowed() THEN t."data" END AS "data\"""" in sql


def test_views_count_days_in_the_display_zone() -> None:
    assert "AT TIME ZONE 'Asia/Makassar'" in views_sql("Asia/Makassar")
    assert "__TZ__" not in views_sql("Asia/Jakarta")
    assert "pg_has_role('lintas_analyst_pii', 'USAGE')" in functions_sql()


def _result() -> QueryResult:
    return QueryResult(
        ("day", "nilai", "at", "doc", "note"),
        [
            (
                dt.date(2025, 5, 5),
                Decimal("750000.00"),
                dt.datetime(2025, 5, 5, 1, 0, tzinfo=dt.UTC),
                {"a": [1]},
                None,
            ),
        ],
    )


def test_json_output_is_exact_and_in_the_display_zone() -> None:
    out = io.StringIO()
    render(_result(), OutputFormat.JSON, out, zone=WIB)
    assert '"nilai": 750000.00' in out.getvalue()  # scale kept, not a float
    (row,) = json.loads(out.getvalue())
    assert row == {
        "day": "2025-05-05",
        "nilai": 750000.0,
        "at": "2025-05-05T08:00:00+07:00",
        "doc": {"a": [1]},
        "note": None,
    }


def test_csv_output_has_a_header_and_empty_nulls() -> None:
    out = io.StringIO()
    render(_result(), OutputFormat.CSV, out, zone=WIB)
    lines = out.getvalue().splitlines()
    assert lines == [
        "day,nilai,at,doc,note",
        '2025-05-05,750000.00,2025-05-05 08:00:00+07:00,"{""a"":[1]}",',
    ]


def test_table_output_shows_every_column_and_the_row_count() -> None:
    out = io.StringIO()
    render(_result(), OutputFormat.TABLE, out, zone=WIB)
    text = out.getvalue()
    assert "750000.00" in text and "NULL" in text and "(1 row)" in text


def test_derived_passwords_are_stable_per_login_and_secret() -> None:
    assert derived_password("s3cret", "lintas_query") == derived_password("s3cret", "lintas_query")
    assert derived_password("s3cret", "lintas_query") != derived_password(
        "s3cret", "lintas_query_pii"
    )
    assert derived_password("other", "lintas_query") != derived_password("s3cret", "lintas_query")


def test_scram_verifier_follows_rfc_5802() -> None:
    salt = b"0123456789abcdef"
    verifier = scram_verifier("pw", salt=salt)
    method, rest = verifier.split("$", 1)
    iterations_salt, keys = rest.split("$")
    iterations, salt_b64 = iterations_salt.split(":")
    stored, server = keys.split(":")
    assert (method, iterations, base64.b64decode(salt_b64)) == ("SCRAM-SHA-256", "4096", salt)
    salted = hashlib.pbkdf2_hmac("sha256", b"pw", salt, 4096)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    assert base64.b64decode(stored) == hashlib.sha256(client_key).digest()
    assert base64.b64decode(server) == hmac.new(salted, b"Server Key", "sha256").digest()


def test_credentials_are_replaced_and_the_rest_kept() -> None:
    dsn = "postgresql://lintas:p%40ss@127.0.0.1:5432/lintas?sslmode=require"
    assert with_credentials(dsn, "lintas_query", "a/b") == (
        "postgresql://lintas_query:a%2Fb@127.0.0.1:5432/lintas?sslmode=require"
    )

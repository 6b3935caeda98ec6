"""Connections to the store's database: codecs, and which driver errors are worth a retry."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import orjson

from lintas.postgres import connect

from .exceptions import StoreUnavailable
from .rows import json_bytes

__all__ = ["connect_store", "is_data_error", "is_row_error", "is_transient"]

# SQLSTATE classes of errors that pass: connection exceptions, transaction rollbacks
# (serialization failures, deadlocks), insufficient resources, operator intervention
# (admin/crash shutdown, "the database system is starting up"), system errors.
_TRANSIENT_CLASSES = frozenset({"08", "40", "53", "57", "58"})
# Data exceptions and integrity violations: a row is at fault (a NUL character in a text,
# say), and the same row fails again. With syntax/access errors (a table changed by hand)
# every row of the table fails.
_ROW_CLASSES = frozenset({"22", "23"})
_DATA_CLASSES = _ROW_CLASSES | {"42"}


def _jsonb_encode(value: Any) -> bytes:
    # Binary jsonb is a version byte (1) and the JSON text: rows carry JSON already
    # encoded, so nothing is decoded and encoded again on the hot path.
    if isinstance(value, bytes):
        return b"\x01" + value
    if isinstance(value, str):
        return b"\x01" + value.encode()
    return b"\x01" + json_bytes(value)


def _jsonb_decode(data: bytes) -> Any:
    return orjson.loads(data[1:])


def is_transient(exc: BaseException) -> bool:
    """True for errors that a reconnect or a retry of the same transaction can get past."""
    if isinstance(exc, ValueError):
        return False  # asyncpg's client-side DataError: a value it cannot encode
    if isinstance(exc, OSError | asyncio.TimeoutError | asyncpg.InterfaceError):
        return True  # the connection is gone or closing
    sqlstate = getattr(exc, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate[:2] in _TRANSIENT_CLASSES


def is_data_error(exc: BaseException) -> bool:
    """True for errors caused by the rows written (or by a table changed by hand)."""
    sqlstate = getattr(exc, "sqlstate", None)
    return is_row_error(exc) or (isinstance(sqlstate, str) and sqlstate[:2] in _DATA_CLASSES)


def is_row_error(exc: BaseException) -> bool:
    """True for errors caused by a value of one row, which the other rows do not share:
    refused by the server, or one asyncpg cannot encode while copying (it raises
    ``ValueError`` for a malformed UUID text, ``TypeError`` for a value of another type)."""
    if isinstance(exc, ValueError | TypeError):
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate[:2] in _ROW_CLASSES


async def connect_store(dsn: str, *, application_name: str) -> Any:
    """A connection with the store's codecs (``jsonb`` as JSON bytes in, objects out).

    Raises:
        StoreUnavailable: the database cannot be reached (retriable).
    """
    try:
        conn = await connect(dsn, application_name=application_name, timeout=10)
        await conn.set_type_codec(
            "jsonb",
            schema="pg_catalog",
            encoder=_jsonb_encode,
            decoder=_jsonb_decode,
            format="binary",
        )
    except Exception as exc:
        if is_transient(exc):
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        raise
    return conn

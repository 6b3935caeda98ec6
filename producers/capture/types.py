"""Value types shared by the capture mechanisms: what a change of a source row looks like."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

__all__ = ["CAPTURE_NAMESPACE", "Change", "Mechanism", "Op", "row_digest", "stable_event_id"]

CAPTURE_NAMESPACE = uuid.UUID("6f1b6f0e-5c1d-5b59-9a57-6c696e746173")
"""The uuid5 namespace of capture event ids (fixed forever: ids must survive upgrades)."""


class Mechanism(StrEnum):
    """How a source is read."""

    POLLING = "polling"
    """SELECT by an increasing key or an ``updated_at`` column (read-only access)."""
    BINLOG = "binlog"
    """MariaDB/MySQL row-based binary log (replication privileges)."""
    LOGICAL = "logical"
    """PostgreSQL logical decoding through a replication slot (pgoutput)."""
    OUTBOX = "outbox"
    """A transactional outbox table the application writes its events to."""


class Op(StrEnum):
    """What happened to a row."""

    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"
    SNAPSHOT = "snapshot"
    """The row existed when the capture started (initial snapshot); mapped like an insert."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One change of one source row, as read by a mechanism.

    Attributes:
        table: the table as named in the source file (``ta_setoran``, ``public.pegawai``).
        op: what happened.
        key: the primary key's values, in the key's column order.
        row: the row after the change (before it, for a delete).
        before: the row before an update, when the source gives it (binlog, REPLICA
            IDENTITY FULL); ``None`` otherwise.
        position: where the change sits in the source, stable across re-reads: binlog
            ``file:pos:row``, commit LSN and index, the polled version, ``snapshot:<digest>``.
        committed_at: when the source committed it, when known.
    """

    table: str
    op: Op
    key: tuple[Any, ...]
    row: Mapping[str, Any]
    position: str
    before: Mapping[str, Any] | None = None
    committed_at: dt.datetime | None = None


def _default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


def row_digest(row: Mapping[str, Any]) -> str:
    """A short digest of a row's content: stable for equal values, whatever the order."""
    data = orjson.dumps(
        row, default=_default, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
    )
    return hashlib.blake2b(data, digest_size=10).hexdigest()


def stable_event_id(source: str, change: Change, event_type: str) -> str:
    """The event id of ``change`` mapped to ``event_type``: the same on every re-read.

    A uuid5 over the source, the table, the key, the change's position and the event type,
    so a capture restarted after a crash re-sends what it had not confirmed with the ids it
    had, and downstream dedup (by ``ce_id``) drops the copies.
    """
    key = orjson.dumps(list(change.key), default=_default).decode()
    name = f"{source}|{change.table}|{change.op}|{key}|{change.position}|{event_type}"
    return str(uuid.uuid5(CAPTURE_NAMESPACE, name))

"""One transaction per batch: COPY the rows in, store the offsets.

The fast path COPYs straight into the tables, inside a savepoint. A record may be read twice
(after a crash between a write and nothing else, a rebalance, a replay, or a canonical
duplicate); then the COPY hits an event id already stored, the savepoint is rolled back,
and the batch goes the slow path, through staging tables and a merge that drops the ids
already there:

::

    COPY stage_raw        <- raw rows           (binary COPY, asyncpg copy_records_to_table)
    INSERT INTO store.raw_events SELECT ... FROM stage_raw ON CONFLICT (event_id) DO NOTHING
    COPY stage_<n>        <- typed rows, per typed table
    INSERT INTO store.<type> SELECT ... FROM stage_<n> ON CONFLICT (event_id) DO NOTHING
    UPSERT lintas.sink_offsets (next offset per partition)
    COMMIT

COPY cannot skip rows that already exist, so the slow path's rows go through
session-private staging tables (``ON COMMIT DELETE ROWS``: emptied by every commit). Repeats
are rare, so nearly every batch costs what a plain COPY of its rows does. Rows and offsets
commit together, so the store never holds rows its offsets do not cover, nor offsets past
rows it lacks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import TopicPartition

from lintas.consumers.store.ddl import STORE_SCHEMA, quote_ident
from lintas.consumers.store.rows import RAW_COLUMNS

from ._convert import StoredEvent

__all__ = ["StagedWriter", "Stopped"]

_OFFSETS_SQL = """
INSERT INTO lintas.sink_offsets (sink, topic, partition, next_offset, updated_at)
SELECT $1, u.topic, u.partition, u.next_offset, now()
  FROM unnest($2::text[], $3::integer[], $4::bigint[]) AS u(topic, partition, next_offset)
ON CONFLICT (sink, topic, partition)
DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = EXCLUDED.updated_at
"""

_STOPPED_SQL = """
INSERT INTO lintas.sink_stopped (sink, event_type, topic, reason)
VALUES ($1, $2, $3, $4)
ON CONFLICT (sink, event_type)
DO UPDATE SET topic = EXCLUDED.topic, reason = EXCLUDED.reason, stopped_at = now()
"""


@dataclass(frozen=True, slots=True)
class Stopped:
    """An event type a write records as stopped (``lintas.sink_stopped``)."""

    event_type: str
    topic: str
    reason: str


@dataclass(frozen=True, slots=True)
class _Stage:
    name: str
    columns: tuple[str, ...]
    merge_sql: str


def _column_list(columns: Sequence[str]) -> str:
    return ", ".join(quote_ident(c) for c in columns)


class StagedWriter:
    """Writes batches of rows and their offsets through staging tables of one connection.

    Args:
        sink: the sink's name, the key of its offsets.
    """

    def __init__(self, sink: str) -> None:
        self._sink = sink
        self._stages: dict[str, _Stage] = {}
        self._created = 0

    def reset(self) -> None:
        """Forget the staging tables: the connection they lived in is gone."""
        self._stages.clear()

    async def _stage(self, conn: Any, table: str, columns: tuple[str, ...]) -> _Stage:
        stage = self._stages.get(table)
        if stage is not None and stage.columns == columns:
            return stage
        if stage is not None:
            await conn.execute(f"DROP TABLE IF EXISTS pg_temp.{stage.name}")
        # A fresh name each time: asyncpg caches COPY's column introspection by query text,
        # and a cached statement about a dropped table would fail inside the transaction.
        self._created += 1
        name = f"lintas_stage_{self._created}"
        cols = _column_list(columns)
        target = f"{STORE_SCHEMA}.{quote_ident(table)}"
        await conn.execute(
            f"CREATE TEMP TABLE {name} ON COMMIT DELETE ROWS AS "
            f"SELECT {cols} FROM {target} WITH NO DATA"
        )
        stage = _Stage(
            name=name,
            columns=columns,
            merge_sql=f"INSERT INTO {target} ({cols}) SELECT {cols} FROM pg_temp.{name} "
            "ON CONFLICT (event_id) DO NOTHING",
        )
        self._stages[table] = stage
        return stage

    async def write(
        self,
        conn: Any,
        events: Iterable[StoredEvent],
        offsets: Mapping[TopicPartition, int],
        *,
        table_columns: Mapping[str, tuple[str, ...]],
        stopped: Sequence[Stopped] = (),
    ) -> None:
        """Write the events' rows and the offsets in one transaction.

        Args:
            conn: a store connection, not inside a transaction.
            events: the rows to write.
            offsets: next offset per partition, stored with the rows.
            table_columns: every typed table's columns as the database has them.
            stopped: event types to record as stopped in the same transaction.
        """
        raw: list[tuple[Any, ...]] = []
        typed: dict[str, dict[tuple[str, ...], list[tuple[Any, ...]]]] = {}
        for event in events:
            raw.append(event.raw)
            by_columns = typed.setdefault(event.writer.shape.table, {})
            by_columns.setdefault(event.writer.columns, []).append(event.typed)
        stages = {"raw_events": await self._stage(conn, "raw_events", RAW_COLUMNS)}
        for table in typed:
            stages[table] = await self._stage(conn, table, table_columns[table])
        async with conn.transaction():
            if not await self._copy_direct(conn, raw, typed):
                if raw:
                    await self._copy(conn, stages["raw_events"], RAW_COLUMNS, raw)
                for table, groups in typed.items():
                    # One COPY per writer schema: each fills the columns its schema has,
                    # and the merge moves every staged row at once.
                    for columns, rows in groups.items():
                        await self._copy(conn, stages[table], columns, rows, merge=False)
                    await conn.execute(stages[table].merge_sql)
            if offsets:
                await conn.execute(
                    _OFFSETS_SQL,
                    self._sink,
                    [tp.topic for tp in offsets],
                    [tp.partition for tp in offsets],
                    list(offsets.values()),
                )
            for stop in stopped:
                await conn.execute(
                    _STOPPED_SQL, self._sink, stop.event_type, stop.topic, stop.reason
                )

    async def _copy_direct(
        self,
        conn: Any,
        raw: list[tuple[Any, ...]],
        typed: Mapping[str, Mapping[tuple[str, ...], list[tuple[Any, ...]]]],
    ) -> bool:
        """COPY the rows straight into their tables; False, with nothing written, when one of
        the events is already stored (or is in the batch twice)."""
        try:
            async with conn.transaction():  # a savepoint inside the batch's transaction
                if raw:
                    await conn.copy_records_to_table(
                        "raw_events",
                        records=raw,
                        columns=list(RAW_COLUMNS),
                        schema_name=STORE_SCHEMA,
                    )
                for table, groups in typed.items():
                    for columns, rows in groups.items():
                        await conn.copy_records_to_table(
                            table, records=rows, columns=list(columns), schema_name=STORE_SCHEMA
                        )
        except asyncpg.UniqueViolationError:
            return False
        return True

    async def _copy(
        self,
        conn: Any,
        stage: _Stage,
        columns: Sequence[str],
        rows: list[tuple[Any, ...]],
        *,
        merge: bool = True,
    ) -> None:
        await conn.copy_records_to_table(
            stage.name, records=rows, columns=list(columns), schema_name="pg_temp"
        )
        if merge:
            await conn.execute(stage.merge_sql)

"""The store sink: canonical topics into PostgreSQL, exactly once.

Every canonical event lands once in ``store.raw_events`` and once in its event type's
typed table. Exactly once comes from two things together (the Kafka Connect exactly-once
sink pattern, see ``docs/store.md``):

- a batch's rows and its next offsets commit in one PostgreSQL transaction
  (:mod:`._staging`), and on every assignment the sink seeks to the offsets stored there;
- rows are merged with ``ON CONFLICT (event_id) DO NOTHING``, so an event read twice (the
  canonical topic is at-least-once) is stored once.

A new writer schema version is applied to its typed table before its rows are written
(new nullable columns, wider enum checks); a change the table cannot follow stops that
event type only: its partitions are paused at the first record of the new schema, the
reason goes to the log and to ``lintas.sink_stopped``, and the other types run on. A
record whose rows the database refuses (a value no column can hold) is dead-lettered and
the rest of its batch written; a table refusing every row (changed by hand) stops its type.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from lintas.consumers.store.connection import (
    connect_store,
    is_data_error,
    is_row_error,
    is_transient,
)
from lintas.consumers.store.exceptions import (
    CanonicalRecordInvalid,
    SchemaConflict,
    StoreUnavailable,
)
from lintas.consumers.store.prepare import prepare_store
from lintas.consumers.store.tables import ensure_table
from lintas.kafka import KafkaConnection
from lintas.schemas import Catalog, DeserializationError, SchemaResolver, UnknownSchemaId

from ._convert import CanonicalConverter, StoredEvent, Writer
from ._deadletter import DeadLetterWriter
from ._staging import StagedWriter, Stopped
from .base import BatchingConfig, BatchingSink
from .batch import SinkBatch

__all__ = ["PostgresSink"]

log = logging.getLogger("lintas.consumers.sinks")


class PostgresSink(BatchingSink[StoredEvent]):
    """Writes the canonical topics into the merged store.

    Usage::

        sink = PostgresSink(conn, BatchingConfig(group_id="lintas-store",
                                                 pattern=canonical_pattern("")),
                            dsn=dsn, registry=registry, catalog=load_catalog(),
                            dlq_topic="lintas.dlq")
        async with sink:
            await sink.run()

    Args:
        kafka: the platform's Kafka connection.
        config: consumer group and batching; ``pattern`` should be
            :func:`~lintas.consumers.sinks.canonical_pattern` of ``topic_prefix``.
        dsn: the store's database (migrated).
        registry: where writer schemas are fetched by id.
        catalog: event types whose typed tables and views are created at start (and whose
            PII tags complete the writer schemas'); ``None`` creates nothing up front.
        topic_prefix: prefix of the canonical topics (empty in production).
        dlq_topic: where undecodable records go.
        timezone: display time zone of the analytics views.
        on_written: called with each batch's events once they are committed (the service
            counts them as activity of their applications for the integrated indicator).
    """

    def __init__(
        self,
        kafka: KafkaConnection,
        config: BatchingConfig,
        *,
        dsn: str,
        registry: SchemaResolver,
        catalog: Catalog | None,
        dlq_topic: str,
        topic_prefix: str = "",
        timezone: str = "Asia/Jakarta",
        on_written: Callable[[list[StoredEvent]], None] | None = None,
    ) -> None:
        super().__init__(kafka, config)
        self._on_written = on_written
        self._dsn = dsn
        self._catalog = catalog
        self._timezone = timezone
        self._conn: Any = None
        self._converter = CanonicalConverter(
            registry, topic_prefix=topic_prefix, catalog=catalog, retry=self._retry
        )
        self._dead_letters = DeadLetterWriter(kafka, dlq_topic)
        self._staged = StagedWriter(config.group_id)
        # Writers (topic, schema id) whose table was made to fit, in this connection's life,
        # and every typed table's columns as the database has them.
        self._fitted: set[tuple[str, int]] = set()
        self._conflicts: dict[tuple[str, int], SchemaConflict] = {}
        self._table_columns: dict[str, tuple[str, ...]] = {}
        # Types stopped and not yet recorded in lintas.sink_stopped (the next write does).
        self._unrecorded: list[Stopped] = []
        # Topic -> the batch whose write stopped it: only that batch (retried, say) still
        # writes the topic's records from before the conflict.
        self._stopped_in: dict[str, int] = {}

    # -- connection ----------------------------------------------------------------------

    async def _connection(self) -> Any:
        if self._conn is None or self._conn.is_closed():
            lost = self._conn is not None
            self._conn = await connect_store(self._dsn, application_name=f"lintas-sink {self.name}")
            self._staged.reset()
            if lost:
                log.info("sink %s: reconnected to the store", self.name)
        return self._conn

    def _lost(self, exc: BaseException) -> StoreUnavailable:
        """Drop the connection after ``exc``; the error to retry on."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()
        return StoreUnavailable(f"{type(exc).__name__}: {exc}")

    async def open(self) -> None:
        async def prepare() -> None:
            try:
                conn = await self._connection()
                if self._catalog is not None:
                    await prepare_store(conn, catalog=self._catalog, timezone=self._timezone)
                # A restart tries every event type again; a conflict that remains is
                # recorded again when the sink meets it.
                await conn.execute("DELETE FROM lintas.sink_stopped WHERE sink = $1", self.name)
            except Exception as exc:
                if is_transient(exc):
                    raise self._lost(exc) from exc
                raise

        await self._retry("preparing the store", prepare)

    async def close(self) -> None:
        await self._dead_letters.close()
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    # -- BatchingSink --------------------------------------------------------------------

    async def convert(self, record: ConsumerRecord) -> StoredEvent | None:
        try:
            return await self._converter.convert(record)
        except UnknownSchemaId as exc:
            reason, message = "unknown_schema_id", exc.message
        except DeserializationError as exc:
            # The reason codes of lintas.streams.Reason, so `lintas dlq list` groups them.
            framed = "magic byte" not in exc.message and "too short" not in exc.message
            reason, message = ("undecodable" if framed else "wire_format"), exc.message
        except CanonicalRecordInvalid as exc:
            reason, message = "schema_mismatch", exc.message
        except SchemaConflict as exc:
            event_type = self._converter.event_type_of(record.topic)
            if record.topic not in self.stopped_topics:
                self._unrecorded.append(Stopped(event_type, record.topic, exc.message))
            self.stop_topic(record.topic, exc.message)
            return None
        event_type = self._converter.event_type_of(record.topic)
        await self._dead_letters.send(record, reason=reason, message=message, event_type=event_type)
        return None

    async def stored_offsets(
        self, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, int]:
        wanted = set(partitions)
        try:
            conn = await self._connection()
            rows = await conn.fetch(
                "SELECT topic, partition, next_offset FROM lintas.sink_offsets "
                "WHERE sink = $1 AND topic = ANY($2::text[])",
                self.name,
                sorted({tp.topic for tp in wanted}),
            )
        except Exception as exc:
            if is_transient(exc):
                raise self._lost(exc) from exc
            raise
        found = {TopicPartition(r["topic"], r["partition"]): r["next_offset"] for r in rows}
        return {tp: off for tp, off in found.items() if tp in wanted}

    async def write(self, batch: SinkBatch[StoredEvent]) -> None:
        conn = await self._connection()
        try:
            # Records of a type stopped since they were collected are read again on restart.
            batch.drop(
                [
                    tp
                    for tp in batch.next_offsets
                    if tp.topic in self.stopped_topics
                    and self._stopped_in.get(tp.topic) != batch.number
                ]
            )
            self._unrecorded += await self._fit_tables(conn, batch)
            await self._staged.write(
                conn,
                batch.values(),
                batch.next_offsets,
                table_columns=self._table_columns,
                stopped=self._unrecorded,
            )
            self._unrecorded = []
            if self._on_written is not None:
                self._on_written(list(batch.values()))
        except Exception as exc:
            if is_transient(exc):
                self._fitted.clear()
                raise self._lost(exc) from exc
            if not is_data_error(exc):
                raise
            await self._isolate(conn, batch, exc)

    # -- schema versions -----------------------------------------------------------------

    async def _fit_tables(self, conn: Any, batch: SinkBatch[StoredEvent]) -> list[Stopped]:
        """Make every typed table fit the writer schemas in ``batch``; cut and stop the rest."""
        writers: dict[tuple[str, int], Writer] = {}
        for tp, entries in batch.entries.items():
            for entry in entries:
                if entry.value is not None:
                    writers.setdefault((tp.topic, entry.value.writer.schema_id), entry.value.writer)
        for key, writer in writers.items():
            if key in self._fitted or key in self._conflicts:
                continue
            try:
                self._table_columns[writer.shape.table] = await ensure_table(conn, writer.shape)
                self._fitted.add(key)
            except SchemaConflict as exc:
                self._conflicts[key] = exc
        stopped: dict[str, Stopped] = {}
        for tp in list(batch.entries):
            first = next(
                (
                    e
                    for e in batch.entries[tp]
                    if e.value is not None
                    and (tp.topic, e.value.writer.schema_id) in self._conflicts
                ),
                None,
            )
            if first is None or first.value is None:
                continue
            conflict = self._conflicts[(tp.topic, first.value.writer.schema_id)]
            batch.cut(tp, first.offset)
            stopped[tp.topic] = Stopped(conflict.event_type, tp.topic, conflict.message)
        for stop in stopped.values():
            self._stopped_in[stop.topic] = batch.number
            self.stop_topic(stop.topic, stop.reason)
        return list(stopped.values())

    async def _isolate(self, conn: Any, batch: SinkBatch[StoredEvent], exc: BaseException) -> None:
        """The database refused the batch: find what it refuses, write the rest.

        Each event type is written alone. When one is refused for a row's value (a data
        exception), its rows are halved until the refused records are found; those are
        dead-lettered and the others written. When a type is refused as a whole (its table
        was changed by hand, or every one of its rows fails: the fault is not in them), it
        stops like a schema conflict.
        """
        log.warning("sink %s: the database refused a batch (%s); isolating it", self.name, exc)
        by_topic: dict[str, SinkBatch[StoredEvent]] = {}
        for tp in batch.next_offsets:
            part = by_topic.setdefault(tp.topic, SinkBatch())
            part.entries[tp] = batch.entries.get(tp, [])
            part.next_offsets[tp] = batch.next_offsets[tp]
        for topic, part in by_topic.items():
            try:
                await self._staged.write(
                    conn, part.values(), part.next_offsets, table_columns=self._table_columns
                )
                continue
            except Exception as error:
                if is_transient(error) or not is_data_error(error):
                    raise
                failure = error
            events = list(part.values())
            refused = await self._refused_rows(conn, events) if is_row_error(failure) else None
            if refused is not None and (len(refused) < len(events) or len(events) == 1):
                for event, why in refused:
                    await self._dead_letters.send(
                        event.record,
                        reason="processing_error",
                        message=f"the store refused its row: {why}",
                        event_type=event.writer.shape.event_type,
                    )
                await self._staged.write(
                    conn, (), part.next_offsets, table_columns=self._table_columns
                )
                continue
            # Every row refused: the fault is in the table (or the store), not in the rows.
            reason = f"the database refused its rows: {type(failure).__name__}: {failure}"
            self._unrecorded.append(Stopped(self._converter.event_type_of(topic), topic, reason))
            self.stop_topic(topic, reason)
        await self._staged.write(conn, (), {}, table_columns={}, stopped=self._unrecorded)
        self._unrecorded = []

    async def _refused_rows(
        self, conn: Any, events: list[StoredEvent]
    ) -> list[tuple[StoredEvent, str]]:
        """Write ``events`` (rows only), halving on a refusal; the refused ones and why.

        The rows go in without their offsets: a crash before the offsets are stored reads
        them again, and the merge by event id stores them once.
        """
        try:
            await self._staged.write(conn, events, {}, table_columns=self._table_columns)
            return []
        except Exception as error:
            if is_transient(error) or not is_row_error(error):
                raise
            if len(events) == 1:
                return [(events[0], f"{type(error).__name__}: {error}")]
        half = len(events) // 2
        return [
            *await self._refused_rows(conn, events[:half]),
            *await self._refused_rows(conn, events[half:]),
        ]

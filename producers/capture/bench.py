"""``lintas bench capture``: changes per second each mechanism captures, and the lag from the
commit in the source to the event in Kafka at a steady 500 changes/s.

Runs against the running stack's Kafka, registry and PostgreSQL (a fresh database, dropped
afterwards, with its slot) and a private MariaDB it starts itself. For each mechanism:

- **throughput**: a first run records where the stream starts and stops; ``N`` payments
  are inserted (transactions of 500 rows); a second run starts and reads that backlog;
  figure = ``N`` / time from its start until it reported all ``N`` events acknowledged
  (start-up and checks included).
- **lag**: 500 changes/s (5 rows per transaction every 10 ms) for ``seconds``; the lag of a
  row is the broker's append time of its event (the topic uses ``LogAppendTime``) minus the
  time its INSERT's commit returned in the writer. Reported as p50/p99 in milliseconds.

Polling and logical decoding read every ``poll_interval_s`` when idle: the benchmark uses
0.1 s (reported), which bounds their lag from below; the binlog is pushed by the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import decimal
import logging
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import yaml

from lintas.kafka import KafkaConnection, create_admin, create_consumer
from lintas.settings import CaptureSettings, ProducerSettings, Settings, load_settings

from .config import load_source
from .runner import CaptureRunner

__all__ = ["bench_capture"]

log = logging.getLogger("lintas.capture.bench")

RATE = 500  # changes per second in the lag phase
_TXN = 5
_POLL_S = 0.1
_COLUMNS = (
    "no_sspd, kd_billing, npwpd, nm_wp, kd_pajak, thn_pajak, masa_pajak, pokok, denda, "
    "jml_bayar, kd_kanal, nm_bank, kd_prov, kd_kab, kd_kec, kd_kel, tgl_setor"
)
_MAPPING = {
    "table": "ta_setoran",
    "key": ["id_setoran"],
    "events": [
        {
            "type": "bapenda.pajak_dibayar.v1",
            "on": ["insert", "update"],
            "fields": {
                "ntpd": "no_sspd",
                "kode_bayar": "kd_billing",
                "npwpd": "npwpd",
                "nama_wajib_pajak": "nm_wp",
                "jenis_pajak": {"column": "kd_pajak", "transform": {"map": {"01": "BPHTB"}}},
                "tahun_pajak": "thn_pajak",
                "masa_pajak": "masa_pajak",
                "pokok_pajak": "pokok",
                "denda": "denda",
                "jumlah_dibayar": "jml_bayar",
                "kanal_pembayaran": {"value": "QRIS"},
                "bank_persepsi": "nm_bank",
                "kode_wilayah": {
                    "template": "{kd_prov}{kd_kab}{kd_kec}{kd_kel}",
                    "transform": "kode_wilayah",
                },
                "dibayar_pada": "tgl_setor",
            },
        }
    ],
}
_MARIADB_TABLE = """CREATE TABLE ta_setoran (
    id_setoran INT NOT NULL AUTO_INCREMENT PRIMARY KEY, no_sspd VARCHAR(30), kd_billing
    VARCHAR(20), npwpd VARCHAR(30), nm_wp VARCHAR(100), kd_pajak CHAR(2), thn_pajak SMALLINT,
    masa_pajak TINYINT, pokok DECIMAL(18,2), denda DECIMAL(18,2), jml_bayar DECIMAL(18,2),
    kd_kanal VARCHAR(10), nm_bank VARCHAR(50), kd_prov CHAR(2), kd_kab CHAR(2), kd_kec CHAR(2),
    kd_kel CHAR(4), tgl_setor DATETIME,
    tgl_update DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB"""
_POSTGRES_TABLE = """CREATE TABLE public.ta_setoran (
    id_setoran serial PRIMARY KEY, no_sspd varchar(30), kd_billing varchar(20),
    npwpd varchar(30), nm_wp varchar(100), kd_pajak char(2), thn_pajak smallint,
    masa_pajak smallint, pokok numeric(18,2), denda numeric(18,2), jml_bayar numeric(18,2),
    kd_kanal varchar(10), nm_bank varchar(50), kd_prov char(2), kd_kab char(2),
    kd_kec char(2), kd_kel char(4), tgl_setor timestamp,
    tgl_update timestamp(6) NOT NULL DEFAULT clock_timestamp()
)"""


def _row(i: int) -> tuple[Any, ...]:
    pokok = decimal.Decimal(150_000 + i % 1000)
    return (
        f"3273{i:012d}",
        f"32732500{i:07d}",
        f"P.2.{i:09d}",
        f"Wajib Pajak {i}",
        "01",
        2025,
        1 + i % 12,
        pokok,
        decimal.Decimal(0),
        pokok,
        "QRIS",
        "Bank BJB",
        "32",
        "73",
        "02",
        "1003",
        dt.datetime(2025, 8, 15, 10, 0) + dt.timedelta(seconds=i % 86_400),
    )


class _Writer:
    """The legacy application: inserts payment rows in transactions, on its own connection.

    Args:
        kind: ``mariadb`` or ``postgresql``.
        address: how to connect: ``(host, port, user, password, database)`` for MariaDB,
            a DSN for PostgreSQL.
    """

    def __init__(self, kind: str, address: Any) -> None:
        self.kind = kind
        self.address = address
        self._conn: Any = None

    async def __aenter__(self) -> _Writer:
        if self.kind == "mariadb":
            import aiomysql

            host, port, user, password, db = self.address
            self._conn = await aiomysql.connect(
                host=host, port=port, user=user, password=password, db=db, autocommit=False
            )
        else:
            from lintas.postgres import connect

            self._conn = await connect(self.address)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.kind == "mariadb":
            self._conn.close()
        else:
            await self._conn.close()

    async def truncate(self) -> None:
        """Empty the table: each mechanism starts from none of the rows the previous wrote."""
        if self.kind == "mariadb":
            async with self._conn.cursor() as cur:
                await cur.execute("TRUNCATE TABLE ta_setoran")
        else:
            await self._conn.execute("TRUNCATE public.ta_setoran")

    async def write(self, rows: list[tuple[Any, ...]]) -> None:
        """Insert ``rows`` in one transaction; returns once it committed."""
        if self.kind == "mariadb":
            marks = ", ".join(["%s"] * 17)
            async with self._conn.cursor() as cur:
                await cur.executemany(f"INSERT INTO ta_setoran ({_COLUMNS}) VALUES ({marks})", rows)
            await self._conn.commit()
        else:
            marks = ", ".join(f"${i + 1}" for i in range(17))
            async with self._conn.transaction():
                await self._conn.executemany(
                    f"INSERT INTO public.ta_setoran ({_COLUMNS}) VALUES ({marks})", rows
                )


class _Target:
    """One mechanism: its source-file body and how to write to its database."""

    def __init__(self, name: str, body: dict[str, Any], writer: Callable[[], _Writer]) -> None:
        self.name = name
        self.body = body
        self.writer = writer


def _paced(writer: Callable[[], _Writer], first: int, count: int) -> dict[bytes, float]:
    """Write ``count`` rows at :data:`RATE` per second on an event loop of its own (so the
    capture's work cannot delay the writer's clock); the commit time of each row's key."""

    async def run() -> dict[bytes, float]:
        committed: dict[bytes, float] = {}
        async with writer() as w:
            begin = time.perf_counter()
            for n in range(0, count, _TXN):
                rows = [_row(first + n + k) for k in range(_TXN)]
                await w.write(rows)
                now = time.time()
                for row in rows:
                    committed[str(row[2]).encode()] = now
                pause = begin + (n + _TXN) / RATE - time.perf_counter()
                if pause > 0:
                    await asyncio.sleep(pause)
        return committed

    return asyncio.run(run())


async def bench_capture(
    *, seconds: float = 5.0, settings: Settings | None = None
) -> dict[str, Any]:
    """Measure every mechanism; the figures as one dict (see the module docstring)."""
    settings = settings or load_settings()
    from lintas.endpoints import resolve_endpoints

    endpoints = resolve_endpoints(settings)
    figures: dict[str, Any] = {"rate_per_s": RATE, "poll_interval_s": _POLL_S}
    with tempfile.TemporaryDirectory(prefix="lintas-bench-capture-") as tmp:
        work = Path(tmp)
        async with _stack(work, endpoints.pg_dsn) as targets:
            for target in targets:
                figures[target.name] = await _bench_one(
                    target, work, settings, endpoints.kafka, endpoints.registry_url, seconds
                )
                log.info("%s: %s", target.name, figures[target.name])
    return figures


@contextlib.asynccontextmanager
async def _stack(work: Path, pg_dsn: str) -> AsyncIterator[list[_Target]]:
    from lintas.deploy.local.mariadb import MariaDBServer
    from lintas.postgres import connect

    server = MariaDBServer(work / "mariadb")
    try:
        await asyncio.to_thread(server.start)
    except BaseException:
        await asyncio.to_thread(server.purge)
        raise
    pg_name = f"lintas_bench_{uuid.uuid4().hex[:8]}"
    admin = await connect(pg_dsn)
    await admin.execute(f'CREATE DATABASE "{pg_name}"')
    pg_source_dsn = f"{pg_dsn.rpartition('/')[0]}/{pg_name}"
    try:
        server.execute(f"CREATE DATABASE simda; USE simda; {_MARIADB_TABLE}")
        slot = pg_name.replace("lintas_bench_", "lintas_b_")
        pg = await connect(pg_source_dsn)
        try:
            await pg.execute(_POSTGRES_TABLE)
            await pg.execute(f"CREATE PUBLICATION {slot} FOR TABLE public.ta_setoran")
        finally:
            await pg.close()
        maria_address = ("127.0.0.1", server.port, "lintas", server.password, "simda")
        mariadb = {"kind": "mariadb", "dsn": server.dsn("simda")}
        postgres = {"kind": "postgresql", "dsn": pg_source_dsn}
        yield [
            _Target(
                "binlog",
                {"database": mariadb, "mechanism": "binlog"},
                lambda: _Writer("mariadb", maria_address),
            ),
            _Target(
                "logical",
                {
                    "database": postgres,
                    "mechanism": "logical",
                    "logical": {"slot": slot, "publication": slot},
                },
                lambda: _Writer("postgresql", pg_source_dsn),
            ),
            _Target(
                "polling",
                {"database": postgres, "mechanism": "polling"},
                lambda: _Writer("postgresql", pg_source_dsn),
            ),
        ]
    finally:
        with contextlib.suppress(Exception):
            await admin.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE database = $1",
                pg_name,
            )
        await admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
        await admin.close()
        await asyncio.to_thread(server.purge)


async def _bench_one(
    target: _Target,
    work: Path,
    settings: Settings,
    conn: KafkaConnection,
    registry_url: str | None,
    seconds: float,
) -> dict[str, Any]:
    from aiokafka.admin import NewTopic

    prefix = f"bench{uuid.uuid4().hex[:6]}."
    topic = prefix + "opd.bapenda.pajak_dibayar.v1"
    admin = create_admin(conn)
    await admin.start()
    await admin.create_topics(
        [
            NewTopic(topic, 3, 1, topic_configs={"message.timestamp.type": "LogAppendTime"}),
            NewTopic(prefix + "lintas.dlq", 1, 1),
        ]
    )
    here = work / target.name
    here.mkdir()
    table: dict[str, Any] = dict(_MAPPING)
    if target.name == "polling":
        table["poll"] = {"column": "tgl_update", "mode": "timestamp", "overlap_s": 5}
    source = here / "source.yaml"
    source.write_text(
        yaml.safe_dump(
            {
                "source": f"bench-{target.name}",
                "opd": "bapenda",
                "app": "simda",
                "snapshot": False,
                **target.body,
                "tables": [table],
            }
        )
    )
    bench_settings = settings.model_copy(
        update={
            "data_dir": here,
            "producer": ProducerSettings(spool_dir=here / "spool"),
            "capture": CaptureSettings(
                state_dir=here / "state",
                topic_prefix=prefix,
                poll_interval_s=_POLL_S,
                heartbeat_s=5,
            ),
        }
    )
    config = load_source(source)

    def start() -> tuple[CaptureRunner, asyncio.Event, asyncio.Task[None]]:
        runner = CaptureRunner(config, bench_settings, connection=conn, registry=registry_url)
        stop = asyncio.Event()
        return runner, stop, asyncio.create_task(runner.run(stop))

    async with target.writer() as writer:
        await writer.truncate()
    runner, stop, task = start()
    try:
        # A first run records where the stream starts (binlog position, slot), then stops;
        # the rows written while it is stopped are the backlog the second run reads.
        await asyncio.wait_for(runner.ready.wait(), 120)
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.wait_for(task, 60)
        total = max(2000, int(2000 * seconds))
        async with target.writer() as writer:
            for at in range(0, total, 500):
                await writer.write([_row(i) for i in range(at, min(at + 500, total))])
        started = time.perf_counter()
        runner, stop, task = start()
        while runner.stats.events < total:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
        lags = await _lag_phase(target, runner, conn, topic, total, seconds)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 60)
        await admin.delete_topics([topic, prefix + "lintas.dlq"])
        await admin.close()
    return {
        "changes": total,
        "changes_per_s": round(total / elapsed),
        "lag_p50_ms": round(statistics.median(lags), 1),
        "lag_p99_ms": round(statistics.quantiles(lags, n=100)[98], 1),
        "lag_samples": len(lags),
    }


async def _lag_phase(
    target: _Target,
    runner: CaptureRunner,
    conn: KafkaConnection,
    topic: str,
    first: int,
    seconds: float,
) -> list[float]:
    """500 changes/s for ``seconds``; per row, broker append time minus commit time (ms)."""
    from aiokafka import TopicPartition

    consumer = create_consumer(conn, group_id=None)
    await consumer.start()
    appended: dict[bytes, float] = {}
    try:
        partitions = [TopicPartition(topic, p) for p in range(3)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)  # the throughput phase's events are behind
        count = int(RATE * seconds)
        wanted = {str(_row(first + n)[2]).encode() for n in range(count)}
        reader = asyncio.create_task(_collect(consumer, appended, wanted))
        committed = await asyncio.to_thread(_paced, target.writer, first, count)
        await asyncio.wait_for(reader, 120)
    finally:
        await consumer.stop()
    return [(appended[k] - committed[k]) * 1000 for k in committed if k in appended]


async def _collect(consumer: Any, appended: dict[bytes, float], wanted: set[bytes]) -> None:
    while not wanted <= appended.keys():
        batch = await consumer.getmany(timeout_ms=500)
        for records in batch.values():
            for record in records:
                if record.key in wanted:
                    appended.setdefault(record.key, record.timestamp / 1000)

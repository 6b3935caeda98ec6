"""Fixtures and helpers of the capture tests: a private MariaDB, source databases on it and on
the session's PostgreSQL, topics of one test, a SIMDA-style payments table, and reading what
reached Kafka by event id.

Test modules import the fixtures they use from here (pytest finds fixtures imported into a
test module).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import decimal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomysql
import pytest
import pytest_asyncio
import yaml
from aiokafka.admin import NewTopic
from producer_helpers import Read, read_topic

from lintas.deploy.local.mariadb import MariaDBServer
from lintas.kafka import KafkaConnection, create_admin
from lintas.postgres import connect
from lintas.producers.capture import CaptureRunner, load_source
from lintas.schemas import load_catalog
from lintas.schemas.publish import register_catalog
from lintas.schemas.registry import SchemaRegistryClient
from lintas.settings import CaptureSettings, ProducerSettings, Settings

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "fixtures" / "capture"
CATALOG = load_catalog()
PAJAK = CATALOG.get("bapenda.pajak_dibayar.v1")
IZIN_TERBIT = CATALOG.get("dpmptsp.izin_terbit.v1")
IZIN_DICABUT = CATALOG.get("dpmptsp.izin_dicabut.v1")
EVENT_TYPES = (PAJAK, IZIN_TERBIT, IZIN_DICABUT)
WAIT_S = 180  # a stage that makes no progress this long fails; timings are never asserted
WIB = dt.timezone(dt.timedelta(hours=7))


# -- databases ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    """The session's private MariaDB (binlog on, ROW, FULL metadata). Missing binaries fail."""
    server = MariaDBServer(tmp_path_factory.mktemp("mariadb"))
    server.start()
    try:
        yield server
    finally:
        server.purge()


@dataclass
class SourceDb:
    """A fresh database of one test: how to reach it and to change it."""

    kind: str  # "mariadb" or "postgresql"
    name: str
    dsn: str
    execute: Callable[..., Awaitable[None]]
    fetch: Callable[..., Awaitable[list[dict[str, Any]]]]
    server: MariaDBServer | None = None

    def dsn_for(self, user: str) -> str:
        """The DSN of another login (no password: given through password_env)."""
        scheme, rest = self.dsn.split("://", 1)
        return f"{scheme}://{user}@{rest.split('@', 1)[1]}"


@pytest_asyncio.fixture(loop_scope="session")
async def maria_db(mariadb: MariaDBServer) -> AsyncIterator[SourceDb]:
    name = f"simda_{uuid.uuid4().hex[:8]}"
    mariadb.execute(f"CREATE DATABASE {name}")
    pool = await aiomysql.create_pool(
        host="127.0.0.1",
        port=mariadb.port,
        user="lintas",
        password=mariadb.password,
        db=name,
        autocommit=True,
        minsize=1,
        maxsize=4,
    )

    async def execute(sql: str, *args: Any, many: list[tuple[Any, ...]] | None = None) -> None:
        async with pool.acquire() as conn, conn.cursor() as cur:
            if many is not None:
                await cur.executemany(sql, many)
            else:
                await cur.execute(sql, args or None)

    async def fetch(sql: str, *args: Any) -> list[dict[str, Any]]:
        async with pool.acquire() as conn, conn.cursor(aiomysql.DictCursor) as cur:
            await cur.execute(sql, args or None)
            return list(await cur.fetchall())

    try:
        yield SourceDb("mariadb", name, mariadb.dsn(name), execute, fetch, mariadb)
    finally:
        pool.close()
        await pool.wait_closed()
        with contextlib.suppress(Exception):
            mariadb.execute(f"DROP DATABASE IF EXISTS {name}")


@pytest_asyncio.fixture(loop_scope="session")
async def pg_db(fresh_db: str) -> AsyncIterator[SourceDb]:
    """A fresh PostgreSQL database; replication slots made on it are dropped afterwards."""
    conn = await connect(fresh_db)
    # The migrated database has a `lintas` schema, first in the lintas role's search path:
    # the legacy app's tables go to public, as in an application's own database.
    await conn.execute("SET search_path = public")
    name = fresh_db.rpartition("/")[2]

    async def execute(sql: str, *args: Any, many: list[tuple[Any, ...]] | None = None) -> None:
        if many is not None:
            await conn.executemany(sql, many)
        else:
            await conn.execute(sql, *args)

    async def fetch(sql: str, *args: Any) -> list[dict[str, Any]]:
        return [dict(r) for r in await conn.fetch(sql, *args)]

    try:
        yield SourceDb("postgresql", name, fresh_db, execute, fetch)
    finally:
        # Slots are cluster-wide and keep the database from being dropped: drop ours.
        for _ in range(50):
            try:
                await conn.execute(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                    "WHERE database = $1",
                    name,
                )
                break
            except Exception:  # still active for a moment after the capture stopped
                await asyncio.sleep(0.2)
        await conn.close()


# -- the SIMDA-style payments table ---------------------------------------------------------

SETORAN_MARIADB = """
CREATE TABLE ta_setoran (
    id_setoran INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    no_sspd VARCHAR(30) NOT NULL,
    kd_billing VARCHAR(20) NOT NULL,
    npwpd VARCHAR(30) NOT NULL,
    nm_wp VARCHAR(100) NOT NULL,
    kd_pajak CHAR(2) NOT NULL,
    thn_pajak SMALLINT NOT NULL,
    masa_pajak TINYINT NULL,
    pokok DECIMAL(18,2) NOT NULL,
    denda DECIMAL(18,2) NOT NULL DEFAULT 0,
    jml_bayar DECIMAL(18,2) NOT NULL,
    kd_kanal VARCHAR(10) NOT NULL,
    nm_bank VARCHAR(50) NULL,
    kd_prov CHAR(2) NOT NULL, kd_kab CHAR(2) NOT NULL, kd_kec CHAR(2) NOT NULL,
    kd_kel CHAR(4) NOT NULL,
    tgl_setor DATETIME NOT NULL,
    tgl_update DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB
"""

SETORAN_POSTGRES = """
CREATE TABLE ta_setoran (
    id_setoran serial PRIMARY KEY,
    no_sspd varchar(30) NOT NULL,
    kd_billing varchar(20) NOT NULL,
    npwpd varchar(30) NOT NULL,
    nm_wp varchar(100) NOT NULL,
    kd_pajak char(2) NOT NULL,
    thn_pajak smallint NOT NULL,
    masa_pajak smallint,
    pokok numeric(18,2) NOT NULL,
    denda numeric(18,2) NOT NULL DEFAULT 0,
    jml_bayar numeric(18,2) NOT NULL,
    kd_kanal varchar(10) NOT NULL,
    nm_bank varchar(50),
    kd_prov char(2) NOT NULL, kd_kab char(2) NOT NULL, kd_kec char(2) NOT NULL,
    kd_kel char(4) NOT NULL,
    tgl_setor timestamp NOT NULL,
    tgl_update timestamp(6) NOT NULL DEFAULT clock_timestamp()
)
"""

SETORAN_COLUMNS = (
    "no_sspd, kd_billing, npwpd, nm_wp, kd_pajak, thn_pajak, masa_pajak, pokok, denda, "
    "jml_bayar, kd_kanal, nm_bank, kd_prov, kd_kab, kd_kec, kd_kel, tgl_setor"
)


def setoran_row(i: int, *, kd_pajak: str = "01") -> tuple[Any, ...]:
    """Payment ``i`` as the legacy app writes it (``kd_pajak='99'`` does not map)."""
    pokok = decimal.Decimal(10_000 + i % 5000) * 100
    return (
        f"3273{i:012d}",
        f"32732500{i:07d}",
        f" P.2.{i % 997:07d}.03.01 ",
        f"Warung Nomor {i}",
        kd_pajak,
        2025,
        1 + i % 12,
        pokok,
        decimal.Decimal("0.00"),
        pokok,
        ("qris", "TELLER", "va", "LOKET")[i % 4],
        ("Bank BJB", "", None, "Bank BJB")[i % 4],
        "32",
        "73",
        "02",
        "1003",
        dt.datetime(2025, 8, 15, 10, 12) + dt.timedelta(seconds=i),
    )


async def insert_setoran(db: SourceDb, rows: list[tuple[Any, ...]]) -> None:
    marks = (
        ", ".join(["%s"] * 17)
        if db.kind == "mariadb"
        else ", ".join(f"${i + 1}" for i in range(17))
    )
    await db.execute(f"INSERT INTO ta_setoran ({SETORAN_COLUMNS}) VALUES ({marks})", many=rows)


async def update_setoran(db: SourceDb, ids: list[int], denda: int) -> None:
    """A correction: a penalty added to each payment (one change per row)."""
    if db.kind == "mariadb":
        sql = (
            "UPDATE ta_setoran SET denda = %s, jml_bayar = pokok + %s, "
            "tgl_update = NOW(6) WHERE id_setoran = %s"
        )
    else:
        sql = (
            "UPDATE ta_setoran SET denda = $1, jml_bayar = pokok + $2, "
            "tgl_update = clock_timestamp() WHERE id_setoran = $3"
        )
    await db.execute(sql, many=[(denda, denda, i) for i in ids])


# -- topics, settings, the source file -----------------------------------------------------


@dataclass
class CaptureEnv:
    """Topics and settings of one test: ``<prefix>opd.*`` and ``<prefix>lintas.dlq``."""

    prefix: str
    settings: Settings
    conn: KafkaConnection
    registry_url: str
    work: Path

    @property
    def dlq(self) -> str:
        return self.prefix + "lintas.dlq"

    def topic(self, event_type: Any) -> str:
        return self.prefix + event_type.topic

    async def read(self, event_type: Any) -> list[Read]:
        return await read_topic(self.conn, self.topic(event_type))

    async def read_dlq(self) -> list[Read]:
        return await read_topic(self.conn, self.dlq)

    async def wait_for(
        self, event_type: Any, count: int, *, check: Callable[[], None] | None = None
    ) -> list[Read]:
        """Records of ``event_type`` once ``count`` distinct event ids arrived."""
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while True:
            reads = await self.read(event_type)
            if len({r.event_id for r in reads}) >= count:
                return reads
            if check is not None:
                check()
            if asyncio.get_running_loop().time() > deadline:
                ids = len({r.event_id for r in reads})
                raise AssertionError(f"{ids} of {count} events of {event_type.id} arrived")
            await asyncio.sleep(0.5)

    def source_file(self, name: str, body: dict[str, Any]) -> Path:
        """Write a source file (``body`` without ``source``) next to copies of the mappings."""
        path = self.work / f"{name}.yaml"
        for mapping in FIXTURES.glob("*.mapping.yaml"):
            target = self.work / mapping.name
            if not target.exists():
                target.write_text(mapping.read_text())
        path.write_text(yaml.safe_dump({"source": name, **body}, sort_keys=False))
        return path


@pytest_asyncio.fixture(loop_scope="session")
async def capture_env(
    kafka_conn: KafkaConnection, registry_url: str, tmp_path: Path
) -> AsyncIterator[CaptureEnv]:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    topics = [prefix + t.topic for t in EVENT_TYPES] + [prefix + "lintas.dlq"]
    admin = create_admin(kafka_conn)
    await admin.start()
    await admin.create_topics([NewTopic(t, 3, 1) for t in topics])
    async with SchemaRegistryClient(registry_url) as registry:
        await register_catalog(registry, list(EVENT_TYPES))
    settings = Settings(
        data_dir=tmp_path,
        producer=ProducerSettings(
            spool_dir=tmp_path / "spool", send_timeout_s=10, stop_timeout_s=5
        ),
        capture=CaptureSettings(
            state_dir=tmp_path / "capture",
            topic_prefix=prefix,
            poll_interval_s=0.2,
            heartbeat_s=1,
            retry_max_s=2,
            batch_rows=500,
            snapshot_chunk_rows=200,
        ),
    )
    try:
        yield CaptureEnv(prefix, settings, kafka_conn, registry_url, tmp_path)
    finally:
        await admin.delete_topics(topics)
        await admin.close()


def database_block(db: SourceDb, *, user: str | None = None) -> dict[str, Any]:
    if user is None:
        return {"kind": db.kind, "dsn": db.dsn}
    return {"kind": db.kind, "dsn": db.dsn_for(user), "password_env": "CAPTURE_TEST_PASSWORD"}


@dataclass
class Running:
    """A capture running in this process (see :func:`running`)."""

    runner: CaptureRunner
    task: asyncio.Task[None]

    def check(self) -> None:
        """Raise what stopped the capture, if it stopped."""
        if self.task.done():
            self.task.result()
            raise AssertionError("the capture stopped by itself")


@contextlib.asynccontextmanager
async def running(env: CaptureEnv, source: Path) -> AsyncIterator[Running]:
    """A capture of ``source`` in this process, stopped on exit."""
    runner = CaptureRunner(
        load_source(source), env.settings, connection=env.conn, registry=env.registry_url
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        ready = asyncio.create_task(runner.ready.wait())
        await asyncio.wait([task, ready], timeout=WAIT_S, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if task.done():
            task.result()  # raises what stopped it
        assert runner.ready.is_set(), "the capture did not pass its start-up checks in time"
        yield Running(runner, task)
        if task.done():
            task.result()
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 60)

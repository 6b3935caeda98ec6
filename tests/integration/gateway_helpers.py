"""Helpers of the gateway's integration tests: a real gateway on a fresh directory and topic.

``running_gateway`` starts a :class:`~lintas.producers.gateway.GatewayServer` in the test's
event loop, on this test's database (``fresh_db``), its own compacted directory topic and
its own event topic (every event type is routed there), with an OPD, an application and
its API key registered through the directory API, as an operator would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from lintas.directory import Directory, InvalidApiKey
from lintas.kafka import KafkaConnection
from lintas.producers.gateway import Gateway, GatewayServer
from lintas.schemas import load_catalog
from lintas.settings import GatewaySettings, ProducerSettings, Settings

KEMATIAN = "dukcapil.kematian_dicatat.v1"
KELAHIRAN = "dukcapil.kelahiran_dicatat.v1"
IZIN = "dpmptsp.izin_terbit.v1"
SEEN_WITHIN = 30.0  # bound for the directory view to show a change (never asserted as timing)


@dataclass
class RunningGateway:
    url: str
    token: str
    app_id: str
    topic: str
    directory: Directory
    gateway: Gateway
    settings: Settings

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **extra}

    async def wait_for(self, predicate: Callable[[], bool], what: str) -> None:
        deadline = asyncio.get_running_loop().time() + SEEN_WITHIN
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"the gateway did not see {what} within {SEEN_WITHIN} s")
            await asyncio.sleep(0.05)

    def knows(self, token: str) -> bool:
        try:
            self.gateway.verify_api_key(token)
        except (InvalidApiKey, Exception):
            return False
        return True


async def seed(directory: Directory) -> tuple[str, str]:
    """Two OPDs and a gateway application of Dukcapil; its id and API key."""
    await directory.add_opd({"code": "dukcapil", "name": "Dinas Kependudukan dan Catatan Sipil"})
    await directory.add_opd({"code": "dpmptsp", "name": "DPMPTSP"})
    app, key = await directory.add_application(
        {
            "id": "siak",
            "name": "SIAK Terpusat",
            "opd": "dukcapil",
            "method": "gateway",
            "produces": [KEMATIAN, KELAHIRAN],
        }
    )
    assert key is not None
    return app.id, key.token


@contextlib.asynccontextmanager
async def running_gateway(
    *,
    kafka_conn: KafkaConnection,
    pg_dsn: str,
    registry_url: str,
    topic_factory: Callable[..., Any],
    tmp_path: Path,
    gateway: dict[str, Any] | None = None,
    producer: dict[str, Any] | None = None,
) -> AsyncIterator[RunningGateway]:
    """A gateway with a registered app; ``gateway``/``producer`` override their settings."""
    directory_topic = await topic_factory(
        "test.gateway.directory.", partitions=1, **{"cleanup.policy": "compact"}
    )
    topic = await topic_factory("test.gateway.events.")
    settings = Settings(
        data_dir=tmp_path,
        pg_dsn=pg_dsn,
        producer=ProducerSettings(spool_dir=tmp_path / "spool", **(producer or {})),
        gateway=GatewaySettings(directory_topic=directory_topic, **(gateway or {})),
    )
    directory = await Directory.open(
        settings, pg_dsn=pg_dsn, kafka=kafka_conn, publish=True, topic=directory_topic
    )
    try:
        app_id, token = await seed(directory)
        gw = Gateway(
            settings,
            kafka=kafka_conn,
            pg_dsn=pg_dsn,
            registry=registry_url,
            topic_of=lambda _: topic,
            metrics_registry=CollectorRegistry(),
            catalog=load_catalog(),
        )
        async with GatewayServer(gw, port=0) as server:
            running = RunningGateway(
                url=server.url,
                token=token,
                app_id=app_id,
                topic=topic,
                directory=directory,
                gateway=gw,
                settings=settings,
            )
            await running.wait_for(lambda: running.knows(token), "the application's key")
            yield running
    finally:
        await directory.close()


class GatewayThread:
    """A gateway served from a thread with its own event loop, for synchronous clients
    (schemathesis sends its requests with ``requests``, which would block a shared loop).

    Args:
        make: builds the gateway; called inside the thread, so that everything the gateway
            starts belongs to the thread's loop.
    """

    def __init__(self, make: Callable[[], Gateway]) -> None:
        import threading

        self._make = make
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="gateway-thread", daemon=True)
        self.url = ""
        self.gateway: Gateway | None = None

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the test by start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.gateway = self._make()
        async with GatewayServer(self.gateway, port=0) as server:
            self.url = server.url
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> GatewayThread:
        self._thread.start()
        if not self._ready.wait(120) or self._error is not None:
            raise AssertionError(f"the gateway thread did not start: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(120)


async def prepare(
    *,
    kafka_conn: KafkaConnection,
    pg_dsn: str,
    topic_factory: Callable[..., Any],
    tmp_path: Path,
    gateway: dict[str, Any] | None = None,
) -> tuple[Settings, str, str, Directory]:
    """Topics, settings and a registered app for a gateway built elsewhere (a thread).

    Returns:
        The settings, the event topic, the app's API key, and the open directory (close it).
    """
    directory_topic = await topic_factory(
        "test.gateway.directory.", partitions=1, **{"cleanup.policy": "compact"}
    )
    topic = await topic_factory("test.gateway.events.")
    settings = Settings(
        data_dir=tmp_path,
        pg_dsn=pg_dsn,
        producer=ProducerSettings(spool_dir=tmp_path / "spool"),
        gateway=GatewaySettings(directory_topic=directory_topic, **(gateway or {})),
    )
    directory = await Directory.open(
        settings, pg_dsn=pg_dsn, kafka=kafka_conn, publish=True, topic=directory_topic
    )
    _, token = await seed(directory)
    return settings, topic, token, directory

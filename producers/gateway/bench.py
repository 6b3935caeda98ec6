"""``lintas bench gateway``: events per second through the HTTP gateway, with latencies.

A gateway process of its own (the real app under uvicorn, the real producer with acks=all,
the running stack's broker and registry, a fresh topic) is driven over HTTP/1.1 keep-alive
connections from this process, in two loops:

- **batch**: ``POST /v1/events:batch`` with 1,000 events per request, ``batch_clients``
  requests in flight;
- **single**: ``POST /v1/events/{event_type}`` with one event per request,
  ``single_clients`` requests in flight.

Each figure counts only events answered 202 (every one acknowledged by Kafka: the topic is
reachable, so nothing is spooled; ``spooled`` in the result says so). Latency is per request,
from sending it to reading the answer. Keys are verified from an in-memory directory
snapshot (the same check the live view makes) and idempotency is off: the benchmark
measures the HTTP path, validation, Avro encoding and the producer, not PostgreSQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import multiprocessing
import secrets
import tempfile
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson

from lintas.kafka import KafkaConnection, create_admin
from lintas.schemas import build_nik, load_catalog
from lintas.settings import Settings, load_settings

__all__ = ["bench_gateway"]

EVENT_TYPE = "dukcapil.kematian_dicatat.v1"
_KEYS = 500  # distinct citizens: keys spread over every partition


def _events(count: int) -> list[dict[str, Any]]:
    from .openapi import example_json

    base = example_json(load_catalog().get(EVENT_TYPE))
    out = []
    for i in range(count):
        nik = build_nik(
            "32.73.01",
            dt.date(1950, 1, 1) + dt.timedelta(days=i % _KEYS),
            perempuan=bool(i % 2),
            nomor_urut=1 + i % _KEYS,
        )
        out.append({**base, "nik": nik})
    return out


def _directory(app_id: str, key_id: str, secret: str) -> Any:
    """A directory snapshot holding one gateway application of Dukcapil and its key."""
    from lintas.directory import DirectorySnapshot, decode_change

    app = {"id": app_id, "name": "Bench", "opd": "dukcapil", "method": "gateway",
           "produces": [EVENT_TYPE]}  # fmt: skip
    key = {"key_id": key_id, "app_id": app_id,
           "secret_sha256": hashlib.sha256(secret.encode()).hexdigest()}  # fmt: skip
    changes = [
        decode_change(f"app:{app_id}", orjson.dumps({"kind": "app", "data": app})),
        decode_change(f"key:{key_id}", orjson.dumps({"kind": "key", "data": key})),
    ]
    return DirectorySnapshot().applied(changes)


def _serve(
    conn: KafkaConnection,
    registry_url: str | None,
    topic: str,
    key: tuple[str, str],
    spool_dir: str,
    pipe: Connection,
) -> None:
    """The gateway process: serves until terminated (SIGTERM stops uvicorn gracefully)."""
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    asyncio.run(_serve_async(conn, registry_url, topic, key, spool_dir, pipe))


async def _serve_async(
    conn: KafkaConnection,
    registry_url: str | None,
    topic: str,
    key: tuple[str, str],
    spool_dir: str,
    pipe: Connection,
) -> None:
    import uvicorn
    from prometheus_client import CollectorRegistry

    from .app import create_app
    from .runtime import Gateway

    settings = load_settings()
    settings = settings.model_copy(
        update={
            "producer": settings.producer.model_copy(update={"spool_dir": Path(spool_dir)}),
            # The benchmark measures throughput, not the per-app limit.
            "gateway": settings.gateway.model_copy(
                update={"rate_limit_per_s": 1e9, "rate_limit_burst": 10**9}
            ),
        }
    )
    gateway = Gateway(
        settings,
        kafka=conn,
        pg_dsn=None,
        registry=registry_url,
        verifier=_directory("bench", *key),
        topic_of=lambda _: topic,
        metrics_registry=CollectorRegistry(),
    )
    config = uvicorn.Config(
        create_app(gateway), host="127.0.0.1", port=0, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            pipe.send(("error", repr(task.exception())))
            return
        await asyncio.sleep(0.02)
    pipe.send(("port", int(server.servers[0].sockets[0].getsockname()[1])))
    await task


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class _Connection:
    """One HTTP/1.1 keep-alive connection with requests built once: a client whose own cost
    stays out of the figures (httpx spends more CPU per request than the gateway does)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, port: int) -> _Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self._writer.write(request)
        status_line = await self._reader.readline()
        length = 0
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return int(status_line.split()[1]), await self._reader.readexactly(length)

    def close(self) -> None:
        self._writer.close()


def _request(path: str, body: bytes, authorization: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {authorization}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _drive(
    port: int, requests: list[bytes], per_request: int, clients: int, seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    answers: dict[int, int] = {}
    statuses: dict[str, int] = {}
    connections = [await _Connection.open(port) for _ in range(clients)]
    deadline = time.perf_counter() + seconds

    async def one_client(connection: _Connection, offset: int) -> None:
        i = offset
        while time.perf_counter() < deadline:
            request = requests[i % len(requests)]
            i += clients
            sent = time.perf_counter()
            status, body = await connection.send(request)
            latencies.append(time.perf_counter() - sent)
            answers[status] = answers.get(status, 0) + 1
            if status == 202:
                answer = orjson.loads(body)
                for event in answer.get("events", [answer]):
                    statuses[event["status"]] = statuses.get(event["status"], 0) + 1

    started = time.perf_counter()
    try:
        await asyncio.gather(*(one_client(c, n) for n, c in enumerate(connections)))
    finally:
        for connection in connections:
            connection.close()
    elapsed = time.perf_counter() - started
    accepted = answers.get(202, 0) * per_request
    return {
        "events_per_s": round(accepted / elapsed),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 2),
        "events_per_request": per_request,
        "clients": clients,
        "answers": {str(k): v for k, v in sorted(answers.items())},
        "statuses": statuses,
    }


async def bench_gateway(
    *,
    seconds: float = 5.0,
    batch: int = 1000,
    batch_clients: int = 2,
    single_clients: int = 16,
    settings: Settings | None = None,
    conn: KafkaConnection | None = None,
    registry_url: str | None = None,
) -> dict[str, Any]:
    """Measure events/s and latency through the gateway, batched and one by one.

    Args:
        seconds: time spent in each measured loop.
        batch: events per batch request.
        batch_clients, single_clients: requests in flight in each loop.
        settings: the Lintas settings; read from ``LINTAS_*`` when not given.
        conn, registry_url: the broker and registry; from the settings when not given.
    """
    from aiokafka.admin import NewTopic

    settings = settings or load_settings()
    if conn is None:
        from lintas.endpoints import kafka_connection

        conn = kafka_connection(settings)
    if registry_url is None:
        from lintas.endpoints import registry_url as configured_registry

        registry_url = configured_registry(settings)
    topic = f"bench.gateway.{uuid.uuid4().hex[:10]}"
    admin = create_admin(conn)
    await admin.start()
    await admin.create_topics([NewTopic(topic, settings.kafka.partitions, 1)])
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    spool_dir = tempfile.mkdtemp(prefix="lintas-bench-gateway-")
    # spawn: a clean interpreter, so the server has its own GIL and its own event loop.
    context = multiprocessing.get_context("spawn")
    parent_end, child_end = context.Pipe()
    process = context.Process(
        target=_serve,
        args=(conn, registry_url, topic, (key_id, secret), spool_dir, child_end),
        name="lintas-bench-gateway",
    )
    process.start()
    try:
        if not await asyncio.to_thread(parent_end.poll, 120):
            raise RuntimeError("the benchmark's gateway did not start within 120 s")
        kind, value = parent_end.recv()
        if kind != "port":
            raise RuntimeError(f"the benchmark's gateway failed to start: {value}")
        port = int(value)
        authorization = f"Bearer lk_{key_id}_{secret}"
        events = _events(batch)
        batch_body = orjson.dumps([{"event_type": EVENT_TYPE, "data": e} for e in events])
        batch_requests = [_request("/v1/events:batch", batch_body, authorization)]
        single_path = f"/v1/events/{EVENT_TYPE}"
        single_requests = [_request(single_path, orjson.dumps(e), authorization) for e in events]
        # Warm-up: connections, the schema id, the producer's metadata.
        await _drive(port, batch_requests, batch, 1, 0.5)
        await _drive(port, single_requests, 1, single_clients, 0.5)
        batched = await _drive(port, batch_requests, batch, batch_clients, seconds)
        single = await _drive(port, single_requests, 1, single_clients, seconds)
    finally:
        process.terminate()
        await asyncio.to_thread(process.join, 60)
        if process.is_alive():
            process.kill()
        await admin.delete_topics([topic])
        await admin.close()
    return {
        "bench": "gateway",
        "event_type": EVENT_TYPE,
        "batch": batched,
        "single": single,
        "batch_events_per_s": batched["events_per_s"],
        "single_events_per_s": single["events_per_s"],
        "unit": "events/s answered 202 (acknowledged by Kafka, acks=all); latency per request",
    }

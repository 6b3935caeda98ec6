"""A non-Python client end to end: a Node.js script (built-in fetch, no packages) publishes
through the gateway, and every event id it was given is read back from Kafka."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from gateway_helpers import KEMATIAN, running_gateway
from producer_helpers import read_topic

from lintas.kafka import KafkaConnection
from lintas.producers.gateway.openapi import example_json
from lintas.schemas import load_catalog

pytestmark = pytest.mark.asyncio(loop_scope="session")

SCRIPT = Path(__file__).resolve().parent / "node" / "send_events.mjs"


async def test_a_node_client_publishes_through_the_gateway(
    kafka_conn: KafkaConnection,
    fresh_db: str,
    registry_url: str,
    topic_factory: Callable[..., Any],
    tmp_path: Path,
) -> None:
    node = shutil.which("node")
    assert node is not None, "Node.js is needed for this test (apt-get install nodejs)"
    event_file = tmp_path / "kematian.json"
    event_file.write_bytes(orjson.dumps(example_json(load_catalog().get(KEMATIAN))))
    async with running_gateway(
        kafka_conn=kafka_conn,
        pg_dsn=fresh_db,
        registry_url=registry_url,
        topic_factory=topic_factory,
        tmp_path=tmp_path,
    ) as gw:
        # The gateway serves from this event loop: the script must run beside it, not block it.
        process = await asyncio.create_subprocess_exec(
            node,
            str(SCRIPT),
            gw.url,
            str(event_file),
            env={**os.environ, "LINTAS_API_KEY": gw.token},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode == 0, stderr.decode()
        result = orjson.loads(stdout.splitlines()[-1])
        reads = await read_topic(kafka_conn, gw.topic)

    accepted = result["accepted"]
    assert len(accepted) == 9 and len(set(accepted)) == 9
    assert result["statuses"] == ["sent", "sent"]
    # Every accepted id is in Kafka exactly once: the retried batch published nothing new.
    assert sorted(r.event_id for r in reads) == sorted(accepted)
    assert {r.headers["ce_source"] for r in reads} == {b"/opd/dukcapil/siak"}

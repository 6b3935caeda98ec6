"""``lintas spool status|flush`` on a spool written while the broker was away."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from lintas.cli import app
from lintas.exceptions import LintasError
from lintas.kafka import KafkaConnection
from lintas.producers import EventProducer
from lintas.schemas import example_event, load_catalog, model_for
from lintas.schemas.testing import InMemorySchemaResolver
from lintas.settings import ProducerSettings, Settings

KEMATIAN = load_catalog().get("dukcapil.kematian_dicatat.v1")
runner = CliRunner()


@pytest.fixture
def spooled(tmp_path: Path) -> dict[str, str]:
    """Three events spooled by dukcapil.siak; the CLI's environment to find them."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spool_dir = tmp_path / "spool"
    settings = Settings(
        data_dir=tmp_path,
        producer=ProducerSettings(
            spool_dir=spool_dir, send_timeout_s=1, start_timeout_s=1, stop_timeout_s=1
        ),
    )

    async def spool_three() -> None:
        resolver = InMemorySchemaResolver()
        await resolver.register(KEMATIAN.subject, KEMATIAN.schema_str)
        producer = EventProducer(
            app="siak",
            opd="dukcapil",
            settings=settings,
            connection=KafkaConnection(bootstrap=f"127.0.0.1:{port}", username="u", password="p"),
            registry=resolver,
            metrics_registry=CollectorRegistry(),
        )
        async with producer:
            event = model_for(KEMATIAN).model_validate(example_event(KEMATIAN))
            await producer.send_many([event] * 3)

    asyncio.run(spool_three())
    return {
        "LINTAS_DATA_DIR": str(tmp_path),
        "LINTAS_PRODUCER__SPOOL_DIR": str(spool_dir),
        "LINTAS_PRODUCER__START_TIMEOUT_S": "1",
        "LINTAS_PRODUCER__STOP_TIMEOUT_S": "1",
        "LINTAS_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
        "LINTAS_KAFKA__USERNAME": "u",
        "LINTAS_KAFKA__PASSWORD": "p",
    }


def test_status_shows_counts_but_no_personal_data(spooled: dict[str, str]) -> None:
    result = runner.invoke(app, ["spool", "status", "--json"], env=spooled)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["spool_dir"] == spooled["LINTAS_PRODUCER__SPOOL_DIR"]
    (spool,) = doc["spools"]
    assert (spool["name"], spool["slot"], spool["records"]) == ("dukcapil.siak", 0, 3)
    assert spool["topics"] == {KEMATIAN.topic: 3}
    assert spool["in_use_by"] is None and spool["rejected_records"] == 0
    assert example_event(KEMATIAN)["nik"] not in result.output

    table = runner.invoke(app, ["spool", "status"], env={**spooled, "COLUMNS": "200"})
    assert table.exit_code == 0 and "dukcapil.siak" in table.output

    missing = runner.invoke(app, ["spool", "status", "--name", "nobody"], env=spooled)
    assert isinstance(missing.exception, LintasError)
    assert "nobody" in missing.exception.message


def test_flush_with_the_broker_away_keeps_everything_and_fails(spooled: dict[str, str]) -> None:
    result = runner.invoke(
        app, ["spool", "flush", "--name", "dukcapil.siak", "--timeout", "1"], env=spooled
    )
    assert result.exit_code == 1, result.output
    assert "dukcapil.siak slot 0: forwarded 0, waiting 3" in result.output
    status = runner.invoke(app, ["spool", "status", "--json"], env=spooled)
    assert json.loads(status.output)["spools"][0]["records"] == 3

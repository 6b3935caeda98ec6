"""The docker-compose file cannot run here; it must at least parse and name its services."""

from __future__ import annotations

from importlib import resources

import yaml


def test_compose_parses_and_names_services() -> None:
    text = resources.files("lintas.deploy").joinpath("compose/docker-compose.yml").read_text()
    doc = yaml.safe_load(text)
    services = doc["services"]
    assert {"kafka", "postgres", "migrate"} <= set(services)
    kafka_env = services["kafka"]["environment"]
    assert kafka_env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "StandardAuthorizer" in kafka_env["KAFKA_AUTHORIZER_CLASS_NAME"]
    assert "PLAINTEXT://" not in kafka_env["KAFKA_LISTENERS"].replace("SASL_PLAINTEXT://", "")
    assert "wal_level=logical" in services["postgres"]["command"]


def test_pom_pins_the_kafka_version_we_run() -> None:
    from lintas.settings import KAFKA_VERSION

    pom = resources.files("lintas.deploy.local").joinpath("pom.xml").read_text()
    assert f"<kafka.version>{KAFKA_VERSION}</kafka.version>" in pom

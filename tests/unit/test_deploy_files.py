"""The docker-compose file cannot run here; it must at least parse and name its services."""

from __future__ import annotations

from importlib import resources

import yaml


def test_compose_parses_and_names_services() -> None:
    text = resources.files("lintas.deploy").joinpath("compose/docker-compose.yml").read_text()
    doc = yaml.safe_load(text)
    services = doc["services"]
    assert {"kafka", "postgres", "migrate", "security"} <= set(services)
    assert services["security"]["command"] == ["lintas", "security", "sync"]
    # Only the TLS listener is published to the host.
    assert services["kafka"]["ports"] == ["127.0.0.1:9094:9094"]
    assert "wal_level=logical" in services["postgres"]["command"]


def test_compose_broker_uses_the_local_runners_security_model() -> None:
    base = resources.files("lintas.deploy").joinpath("compose/kafka")
    props = dict(
        line.split("=", 1)
        for line in base.joinpath("server.properties.in").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert props["auto.create.topics.enable"] == "false"
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    protocols = {p.split(":")[1] for p in props["listener.security.protocol.map"].split(",")}
    assert protocols == {"SASL_PLAINTEXT", "SASL_SSL"}, "no listener without SASL"
    assert "SASL_SSL://" in props["listeners"]
    assert props["listener.name.sasl_ssl.ssl.keystore.type"] == "PEM"
    # The start script formats storage with the platform user's SCRAM credential.
    script = base.joinpath("kafka-start.sh").read_text()
    assert "--add-scram" in script and "SCRAM-SHA-512=[name=lintas" in script


def test_pom_pins_the_kafka_version_we_run() -> None:
    from lintas.settings import KAFKA_VERSION

    pom = resources.files("lintas.deploy.local").joinpath("pom.xml").read_text()
    assert f"<kafka.version>{KAFKA_VERSION}</kafka.version>" in pom

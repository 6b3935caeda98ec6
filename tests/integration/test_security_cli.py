"""``lintas apps``, ``lintas subscribers`` and ``lintas security`` on the real broker: a
registered application gets its principal, ACLs and a password shown once; revoking and
retiring take them away; ``export-k8s`` writes the same ACLs for Strimzi."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result
from security_helpers import (
    Tenant,
    create_topics,
    delete_topics,
    forget_principals,
    login_error,
    produce,
)
from typer.testing import CliRunner

from lintas.cli import app
from lintas.deploy.local._process import free_port
from lintas.directory import Application
from lintas.endpoints import Endpoints
from lintas.kafka import KafkaConnection
from lintas.security import AdminRefused, PrincipalNames, application_grant, rules_of

Cli = Callable[..., Result]


@pytest.fixture
def tenant(endpoints: Endpoints) -> Iterator[Tenant]:
    t = Tenant()
    topics = [f"opd.{t.dinkes}.kunjungan_dicatat.v1", f"opd.{t.dukcapil}.kematian_dicatat.v1"]
    create_topics(endpoints.kafka, topics)
    try:
        yield t
    finally:
        forget_principals(endpoints.kafka, t.names)
        delete_topics(endpoints.kafka, topics)


@pytest.fixture
def cli(
    endpoints: Endpoints, registry_url: str, fresh_db: str, tmp_path: Path, tenant: Tenant
) -> Cli:
    base = {
        "LINTAS_PG_DSN": fresh_db,
        "LINTAS_DATA_DIR": str(tmp_path / "data"),
        "LINTAS_REGISTRY_URL": registry_url,
        "LINTAS_KAFKA_BOOTSTRAP": endpoints.kafka.bootstrap,
        "LINTAS_KAFKA__USERNAME": endpoints.kafka.username,
        "LINTAS_KAFKA__PASSWORD": endpoints.kafka.password,
        "LINTAS_KAFKA__SASL_MECHANISM": endpoints.kafka.sasl_mechanism,
        "LINTAS_SECURITY__PRINCIPAL_PREFIX": tenant.prefix,
    }
    cleared: dict[str, str | None] = {k: None for k in os.environ if k.startswith("LINTAS_")}

    def run(*args: str, **env: str) -> Result:
        return CliRunner().invoke(app, list(args), env={**cleared, **base, **env})

    return run


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def data(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def _conn(endpoints: Endpoints, username: str, password: str) -> KafkaConnection:
    return KafkaConnection(
        bootstrap=endpoints.kafka.bootstrap,
        username=username,
        password=password,
        sasl_mechanism="SCRAM-SHA-512",
    )


def _seed(cli: Cli, t: Tenant) -> None:
    ok(cli("opd", "add", t.dinkes, "--name", f"Dinas Kesehatan {t.tag}"))
    ok(cli("opd", "add", t.dukcapil, "--name", f"Disdukcapil {t.tag}"))


def test_an_application_gets_its_principal_and_loses_it(
    cli: Cli, tenant: Tenant, endpoints: Endpoints, tmp_path: Path
) -> None:
    t = tenant
    _seed(cli, t)
    app_id = f"simpus-{t.tag}"
    added = data(
        cli("apps", "add", app_id, "--name", "SIMPUS", "--opd", t.dinkes, "--method", "sdk",
            "--json")
    )  # fmt: skip
    kafka = added["kafka"]
    user = t.names.app(app_id)
    assert kafka["principal"] == f"User:{user}" and kafka["username"] == user
    assert added["application"]["kafka_principal"] == f"User:{user}"
    password = kafka["password"]
    conn = _conn(endpoints, user, password)
    assert produce(conn, f"opd.{t.dinkes}.kunjungan_dicatat.v1") is None
    assert produce(conn, f"opd.{t.dukcapil}.kematian_dicatat.v1") == "TOPIC_AUTHORIZATION_FAILED"

    # Shown once: never in show, list or the directory export.
    for args in (("apps", "show", app_id, "--json"), ("apps", "list"), ("directory", "export")):
        assert password not in ok(cli(*args)).stdout

    # The human output prints it once, under the API key; a gateway app gets none.
    human = ok(cli("apps", "add", f"pcare-{t.tag}", "--name", "PCARE", "--opd", t.dinkes,
                   "--method", "sdk"))  # fmt: skip
    assert "Kafka credential" in human.stdout and "not shown again" in human.stdout
    gateway = data(cli("apps", "add", f"web-{t.tag}", "--name", "WEB", "--opd", t.dinkes,
                       "--method", "gateway", "--json"))  # fmt: skip
    assert gateway["kafka"] is None and gateway["application"]["kafka_principal"] is None

    # export-k8s: a KafkaUser with exactly the ACLs the broker got.
    out = tmp_path / "users.yaml"
    ok(cli("apps", "export-k8s", "--out", str(out), "--cluster", "lintas-prod"))
    users = {d["metadata"]["name"]: d for d in yaml.safe_load_all(out.read_text()) if d}
    assert set(users) == {user, t.names.app(f"pcare-{t.tag}")}
    grant = application_grant(Application.model_validate(added["application"]), t.names)
    assert grant is not None and rules_of(users[user]) == set(grant.rules)
    assert users[user]["metadata"]["labels"]["strimzi.io/cluster"] == "lintas-prod"

    # A new password ends the old one at once.
    renewed = data(cli("apps", "kafka-password", app_id, "--json"))["kafka"]["password"]
    assert login_error(conn) == "_AUTHENTICATION"
    conn = _conn(endpoints, user, renewed)
    assert login_error(conn) is None

    # Revoking every key revokes the Kafka password; retiring removes the ACLs too.
    revoked = data(cli("apps", "revoke", app_id, "--force", "--json"))
    assert revoked["kafka"]["principal"] == f"User:{user}"
    assert login_error(conn) == "_AUTHENTICATION"
    plan = data(cli("security", "sync", "--dry-run", "--json"))
    assert f"User:{user}" not in " ".join(plan["acls_remove"]), "a revoked app keeps its ACLs"
    assert user in plan["credentials_missing"]
    ok(cli("apps", "retire", app_id))
    plan = data(cli("security", "sync", "--dry-run", "--json"))
    assert not any(line.startswith(f"User:{user} ") for line in plan["acls_add"])
    principals = {p["principal"] for p in data(cli("security", "principals", "--json"))}
    assert f"User:{user}" not in principals and f"User:{t.names.service('worker')}" in principals


def test_a_kafka_subscriber_and_security_sync(cli: Cli, tenant: Tenant) -> None:
    t = tenant
    _seed(cli, t)
    name = t.sub("a")
    added = data(cli("subscribers", "add", name, "--opd", t.dinkes, "--mode", "kafka", "--json"))
    assert added["kafka"]["username"] == t.names.subscriber(name) and added["kafka"]["password"]
    disabled = data(cli("subscribers", "disable", name, "--json"))
    assert disabled["status"] == "disabled"
    assert any(c.startswith("- ") for c in disabled["kafka"]["acl_changes"])
    resumed = data(cli("subscribers", "resume", name, "--json"))
    assert all(c.startswith("+ ") for c in resumed["kafka"]["acl_changes"])

    planned = data(cli("security", "sync", "--dry-run", "--json"))
    assert planned["applied"] is False and planned["acls_add"]
    assert all(line.startswith(f"User:{t.prefix}") for line in planned["acls_add"])
    applied = data(cli("security", "sync", "--json"))
    assert applied["acls_add"] == planned["acls_add"]
    assert applied["service_credentials_set"]
    again = data(cli("security", "sync", "--dry-run", "--json"))
    assert again["acls_add"] == [] and again["acls_remove"] == []
    assert again["service_credentials_set"] == []
    assert "nothing to change" in ok(cli("security", "sync")).stdout


def test_kafka_unreachable_keeps_the_registration_and_says_how_to_finish(
    cli: Cli, tenant: Tenant
) -> None:
    t = tenant
    _seed(cli, t)
    down = f"127.0.0.1:{free_port()}"
    result = cli(
        "apps", "add", f"siak-{t.tag}", "--name", "SIAK", "--opd", t.dukcapil, "--method", "sdk",
        LINTAS_KAFKA_BOOTSTRAP=down, LINTAS_KAFKA__REQUEST_TIMEOUT_MS="2000",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "lk_" in result.stdout, "the API key is shown: the application is registered"
    assert f"lintas apps kafka-password siak-{t.tag}" in result.stderr
    assert "did not answer" in result.stderr, result.stderr
    shown = data(cli("apps", "show", f"siak-{t.tag}", "--json"))
    assert shown["application"]["kafka_principal"] == f"User:{t.names.app(f'siak-{t.tag}')}"
    finished = data(cli("apps", "kafka-password", f"siak-{t.tag}", "--json"))
    assert finished["kafka"]["password"]


def test_admin_commands_refuse_a_non_admin_principal(
    cli: Cli, tenant: Tenant, endpoints: Endpoints
) -> None:
    t = tenant
    _seed(cli, t)
    added = data(cli("subscribers", "add", t.sub("b"), "--opd", t.dinkes, "--mode", "kafka",
                     "--json"))  # fmt: skip
    kafka = added["kafka"]
    result = cli(
        "security", "sync", "--dry-run",
        LINTAS_KAFKA__USERNAME=kafka["username"], LINTAS_KAFKA__PASSWORD=kafka["password"],
    )  # fmt: skip
    # The CLI's entry point prints a LintasError as one paragraph (see lintas.cli.main).
    assert isinstance(result.exception, AdminRefused), result.exception
    assert f"User:{kafka['username']}" in result.exception.message
    assert "Alter and Describe on the cluster" in result.exception.message
    assert PrincipalNames(t.prefix).is_managed(kafka["username"])

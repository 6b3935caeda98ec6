"""deploy/k8s and ``lintas apps export-k8s``: every manifest parses, kinds and names fit
together, and the ACLs are the ones the code computes from the directory."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from lintas.directory import load_yaml
from lintas.security import (
    GrantKind,
    PrincipalNames,
    SecurityContext,
    ServiceRole,
    ServiceTopology,
    application_grant,
    export_kafka_users,
    rules_of,
    service_grants,
)
from lintas.settings import KafkaSettings, Settings
from lintas.topics import desired_topics

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
ROLES = {"gateway", "worker", "sink", "deliver", "portal", "registry"}


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    files = sorted(K8S.glob("*.yaml"))
    assert files, "deploy/k8s has no manifests"
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            assert isinstance(doc, dict), f"{path.name}: an empty or scalar document"
            out.append(doc)
    return out


def _of(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_every_manifest_parses_with_kind_name_and_namespace(docs: list[dict[str, Any]]) -> None:
    kinds = Counter(d["kind"] for d in docs)
    assert set(kinds) == {
        "Namespace", "Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser", "Cluster",
        "ConfigMap", "Deployment", "Service", "Job",
    }  # fmt: skip
    for doc in docs:
        assert doc["apiVersion"] and doc["metadata"]["name"], doc
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "lintas", doc["metadata"]["name"]
    names = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(names) == len(set(names)), "a name is used twice for one kind"


def test_kafka_cluster_is_replicated_authenticated_and_authorized(
    docs: list[dict[str, Any]],
) -> None:
    kafka = _of(docs, "Kafka")["lintas"]
    pools = list(_of(docs, "KafkaNodePool").values())
    assert sum(p["spec"]["replicas"] for p in pools if "broker" in p["spec"]["roles"]) == 3
    assert all(p["metadata"]["labels"]["strimzi.io/cluster"] == "lintas" for p in pools)
    spec = kafka["spec"]["kafka"]
    config = spec["config"]
    assert config["default.replication.factor"] == 3
    assert config["min.insync.replicas"] == 2
    assert config["offsets.topic.replication.factor"] == 3
    assert config["auto.create.topics.enable"] is False
    listeners = spec["listeners"]
    assert all(lst["authentication"]["type"] == "scram-sha-512" for lst in listeners)
    assert any(lst["tls"] for lst in listeners)
    assert spec["authorization"] == {"type": "simple", "superUsers": ["lintas-admin"]}


def test_platform_topics_match_topics_sync(docs: list[dict[str, Any]]) -> None:
    production = KafkaSettings(partitions=6, replication_factor=3, min_insync_replicas=2)
    want = {s.name: s for s in desired_topics(production)}
    topics = _of(docs, "KafkaTopic")
    assert set(topics) == set(want)
    for name, doc in topics.items():
        spec = doc["spec"]
        assert spec["topicName"] == name
        assert spec["partitions"] == want[name].partitions
        assert spec["replicas"] == 3
        assert spec["config"] == want[name].configs
    assert int(topics["lintas.dlq"]["spec"]["config"]["retention.ms"]) <= 30 * 86_400_000


def test_platform_users_carry_the_services_acls(docs: list[dict[str, Any]]) -> None:
    users = _of(docs, "KafkaUser")
    grants = {g.user: g for g in service_grants(ServiceTopology(), PrincipalNames())}
    assert set(users) == {*grants, "lintas-admin"}
    for name, grant in grants.items():
        assert users[name]["spec"]["authentication"] == {"type": "scram-sha-512"}
        assert rules_of(users[name]) == set(grant.rules), name
    assert "authorization" not in users["lintas-admin"]["spec"], "a super-user needs no ACLs"


def test_one_deployment_per_role_with_its_own_kafka_user(docs: list[dict[str, Any]]) -> None:
    deployments = _of(docs, "Deployment")
    assert set(deployments) == {f"lintas-{r}" for r in ROLES}
    users = _of(docs, "KafkaUser")
    config = _of(docs, "ConfigMap")["lintas-config"]["data"]
    assert config["LINTAS_KAFKA__SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["LINTAS_KAFKA_BOOTSTRAP"].endswith(":9093"), "the TLS listener"
    for role in ROLES:
        (container,) = deployments[f"lintas-{role}"]["spec"]["template"]["spec"]["containers"]
        assert container["command"][:2] == ["lintas", role]
        env = {e["name"]: e for e in container["env"]}
        assert env["LINTAS_PG_DSN"]["valueFrom"]["secretKeyRef"]["name"] == "lintas-db-app"
        if role == "registry":
            assert "LINTAS_KAFKA__USERNAME" not in env, "the registry never talks to Kafka"
            continue
        user = env["LINTAS_KAFKA__USERNAME"]["value"]
        assert user == PrincipalNames().service(ServiceRole(role)), role
        assert user in users
        secret = env["LINTAS_KAFKA__PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert secret == {"name": user, "key": "password"}, "Strimzi's Secret of that user"
    services = _of(docs, "Service")
    assert set(services) == {"lintas-gateway", "lintas-portal", "lintas-registry"}
    for name, svc in services.items():
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert svc["spec"]["selector"].items() <= labels.items()


def test_postgres_cluster(docs: list[dict[str, Any]]) -> None:
    (cluster,) = _of(docs, "Cluster").values()
    assert cluster["apiVersion"].startswith("postgresql.cnpg.io/")
    assert cluster["metadata"]["name"] == "lintas-db", "its app Secret is lintas-db-app"
    assert cluster["spec"]["instances"] == 3
    assert cluster["spec"]["bootstrap"]["initdb"]["database"] == "lintas"


def test_export_k8s_matches_the_directory(tmp_path: Path) -> None:
    data = load_yaml((ROOT / "docs" / "examples" / "directory.yaml").read_text())
    ctx = SecurityContext.from_settings(Settings(data_dir=tmp_path))
    text = export_kafka_users(ctx, data, cluster="lintas", namespace="lintas")
    users = {d["metadata"]["name"]: d for d in yaml.safe_load_all(text) if d}
    grants = {u: g for u, g in ctx.grants(data).items() if g.kind is not GrantKind.SERVICE}
    assert set(users) == set(grants) and users
    for app in data.applications:
        grant = application_grant(app, ctx.names)
        if grant is None:
            assert f"app-{app.id}" not in users
            continue
        doc = users[grant.user]
        assert doc["kind"] == "KafkaUser"
        assert doc["metadata"]["labels"]["strimzi.io/cluster"] == "lintas"
        assert doc["metadata"]["annotations"]["lintas.id/owner"] == app.id
        rules = rules_of(doc)
        assert rules == set(grant.rules)
        assert {r.name for r in rules} == {f"opd.{app.opd}."}, "its own OPD's prefix only"
    for sub in data.subscribers:
        if sub.mode.value == "kafka":
            rules = rules_of(users[f"sub-{sub.name}"])
            topics = {r.name for r in rules if r.kind.value == "topic"}
            assert topics == {sub.delivery_topic, f"{sub.delivery_topic}.dlq"}
    with_services = export_kafka_users(ctx, data, services=True)
    names = {d["metadata"]["name"] for d in yaml.safe_load_all(with_services) if d}
    assert {f"svc-{r.value}" for r in ServiceRole} <= names

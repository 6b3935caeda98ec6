"""Strimzi ``KafkaUser`` resources from the same grants ``lintas security sync`` applies.

On Kubernetes the Strimzi User Operator owns users and ACLs: it creates the SCRAM-SHA-512
credential, keeps the password in a Secret named after the user, and sets exactly the
ACLs listed in the resource. ``lintas apps export-k8s`` writes one ``KafkaUser`` per
principal of the directory (and, with ``--services``, of the platform services), so a
cluster managed that way gets the same principals and ACLs as the local broker.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import groupby
from typing import TYPE_CHECKING, Any

import yaml

from .acls import AclRule, Grant, GrantKind, Operation, Pattern, ResourceKind

if TYPE_CHECKING:
    from lintas.directory.models import DirectoryData

    from .sync import SecurityContext

__all__ = [
    "KAFKA_USER_API",
    "dump_manifests",
    "export_kafka_users",
    "kafka_user",
    "kafka_users",
    "rules_of",
]

KAFKA_USER_API = "kafka.strimzi.io/v1beta2"


def _resource_key(rule: AclRule) -> tuple[str, str, str, str, bool]:
    return (rule.kind.value, rule.name, rule.pattern.value, rule.host, rule.allow)


def _acl_entries(rules: Iterable[AclRule]) -> list[dict[str, Any]]:
    # One entry per resource with all its operations, as Strimzi's examples write them.
    entries = []
    for (kind, name, pattern, host, allow), group in groupby(
        sorted(rules, key=_resource_key), key=_resource_key
    ):
        resource: dict[str, Any] = {"type": kind}
        if kind != ResourceKind.CLUSTER.value:
            resource |= {"name": name, "patternType": pattern}
        entry: dict[str, Any] = {
            "resource": resource,
            "operations": sorted(r.operation.value for r in group),
            "host": host,
        }
        if not allow:
            entry["type"] = "deny"
        entries.append(entry)
    return entries


def kafka_user(grant: Grant, *, cluster: str, namespace: str | None = None) -> dict[str, Any]:
    """A ``KafkaUser`` with SCRAM-SHA-512 authentication and the grant's ACLs."""
    metadata: dict[str, Any] = {"name": grant.user}
    if namespace:
        metadata["namespace"] = namespace
    metadata |= {
        "labels": {
            "strimzi.io/cluster": cluster,
            "app.kubernetes.io/part-of": "lintas",
            "lintas.id/kind": grant.kind.value,
        },
        "annotations": {"lintas.id/owner": grant.owner},
    }
    return {
        "apiVersion": KAFKA_USER_API,
        "kind": "KafkaUser",
        "metadata": metadata,
        "spec": {
            "authentication": {"type": "scram-sha-512"},
            "authorization": {"type": "simple", "acls": _acl_entries(grant.rules)},
        },
    }


def kafka_users(
    grants: Iterable[Grant], *, cluster: str, namespace: str | None = None
) -> list[dict[str, Any]]:
    """One ``KafkaUser`` per grant, ordered by user name (stable output for diffs)."""
    return [
        kafka_user(g, cluster=cluster, namespace=namespace)
        for g in sorted(grants, key=lambda g: g.user)
    ]


def rules_of(doc: Mapping[str, Any]) -> set[AclRule]:
    """The ACL rules a ``KafkaUser`` document grants (to check manifests against grants).

    Raises:
        ValueError: not a ``KafkaUser`` with simple authorization.
    """
    if doc.get("kind") != "KafkaUser":
        raise ValueError(f"not a KafkaUser: {doc.get('kind')!r}")
    spec = doc["spec"]
    if spec.get("authorization", {}).get("type") != "simple":
        raise ValueError(f"KafkaUser {doc['metadata']['name']} has no simple authorization")
    user = str(doc["metadata"]["name"])
    rules = set()
    for entry in spec["authorization"].get("acls", []):
        resource = entry["resource"]
        for op in entry["operations"]:
            rules.add(
                AclRule(
                    user,
                    ResourceKind(resource["type"]),
                    resource.get("name", "kafka-cluster"),
                    Pattern(resource.get("patternType", "literal")),
                    Operation(op),
                    entry.get("host", "*"),
                    entry.get("type", "allow") == "allow",
                )
            )
    return rules


def dump_manifests(docs: Iterable[Mapping[str, Any]], *, header: str = "") -> str:
    """Documents as one multi-document YAML file (``kubectl apply -f`` reads it)."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    body = yaml.safe_dump_all(list(docs), sort_keys=False, explicit_start=True)
    return ("\n".join(lines) + "\n" if lines else "") + body


def export_kafka_users(
    ctx: SecurityContext,
    data: DirectoryData,
    *,
    cluster: str = "lintas",
    namespace: str | None = None,
    services: bool = False,
) -> str:
    """The ``KafkaUser`` file of ``lintas apps export-k8s``: one per application and Kafka
    subscriber of the directory, and per platform service when ``services`` is set."""
    grants = [g for g in ctx.grants(data).values() if services or g.kind is not GrantKind.SERVICE]
    header = (
        "KafkaUsers generated by `lintas apps export-k8s` from the directory; apply with\n"
        "`kubectl apply -f`. Strimzi's User Operator creates each SCRAM-SHA-512 credential and\n"
        "keeps it in a Secret named after the user (key: password). Regenerate after every\n"
        "directory change; a user left out here is not deleted by `kubectl apply`."
    )
    return dump_manifests(kafka_users(grants, cluster=cluster, namespace=namespace), header=header)

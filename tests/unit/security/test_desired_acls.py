"""The desired ACLs, computed from the directory: who may do what, and nothing more."""

from __future__ import annotations

from pathlib import Path

import pytest

from lintas.directory import (
    Application,
    AppStatus,
    DirectoryData,
    IntegrationMethod,
    Subscriber,
    SubscriberStatus,
    load_yaml,
)
from lintas.security import (
    AclRule,
    Grant,
    GrantKind,
    Operation,
    Pattern,
    PrincipalNames,
    ResourceKind,
    ServiceRole,
    ServiceTopology,
    application_grant,
    desired_grants,
    managed_users,
    plan_acls,
    plan_security,
    principal_of,
    service_grants,
    subscriber_grant,
    user_of,
)

ROOT = Path(__file__).resolve().parents[3]
NAMES = PrincipalNames()
TOPIC, GROUP = ResourceKind.TOPIC, ResourceKind.GROUP
R, W, C, D = Operation.READ, Operation.WRITE, Operation.CREATE, Operation.DESCRIBE
_IMPLY_DESCRIBE = {Operation.READ, Operation.WRITE, Operation.DELETE, Operation.ALTER}


def permits(rules: frozenset[AclRule], kind: ResourceKind, name: str, op: Operation) -> bool:
    """Kafka's StandardAuthorizer, for ALLOW rules: literal, '*' and prefixed names;
    Read/Write/Delete/Alter imply Describe."""
    for rule in rules:
        if rule.kind is not kind or not rule.allow:
            continue
        if rule.pattern is Pattern.PREFIXED:
            named = name.startswith(rule.name)
        else:
            named = rule.name in (name, "*")
        granted = rule.operation in (op, Operation.ALL) or (
            op is D and rule.operation in _IMPLY_DESCRIBE
        )
        if named and granted:
            return True
    return False


def _app(app_id: str, opd: str, **extra: object) -> Application:
    data = {"id": app_id, "name": app_id.upper(), "opd": opd, "method": "sdk", **extra}
    return Application.model_validate(data)


def _sub(name: str, **extra: object) -> Subscriber:
    data: dict[str, object] = {"name": name, "opd": "dinsos", "mode": "kafka", **extra}
    return Subscriber.model_validate(data)


@pytest.fixture(scope="module")
def sample() -> DirectoryData:
    return load_yaml((ROOT / "docs" / "examples" / "directory.yaml").read_text())


def test_principal_names_and_prefix() -> None:
    assert NAMES.app("siak") == "app-siak"
    assert NAMES.subscriber("sikesra") == "sub-sikesra"
    assert NAMES.service(ServiceRole.WORKER) == "svc-worker"
    assert principal_of("app-siak") == "User:app-siak" == principal_of("User:app-siak")
    assert user_of("User:app-siak") == "app-siak"
    with pytest.raises(ValueError):
        user_of("Group:x")
    other = PrincipalNames("t1.")
    assert other.app("siak") == "t1.app-siak"
    assert other.is_managed("t1.svc-worker") and not other.is_managed("app-siak")
    assert NAMES.is_managed("app-siak") and not NAMES.is_managed("t1.app-siak")
    assert not NAMES.is_managed("lintas"), "the platform super-user is never managed"


def test_an_app_writes_only_its_own_opds_topics() -> None:
    grant = application_grant(_app("simpus", "dinkes"), NAMES)
    assert grant is not None and grant.user == "app-simpus"
    assert permits(grant.rules, TOPIC, "opd.dinkes.kunjungan_dicatat.v1", W)
    assert permits(grant.rules, TOPIC, "opd.dinkes.kunjungan_dicatat.v1", D)
    assert not permits(grant.rules, TOPIC, "opd.dukcapil.kematian_dicatat.v1", W)
    assert not permits(grant.rules, TOPIC, "opd.dinkes_x.a.v1", W), "prefix ends with a dot"
    assert not permits(grant.rules, TOPIC, "opd.dinkes.kunjungan_dicatat.v1", R)
    assert not permits(grant.rules, TOPIC, "lintas.canonical.dinkes.kunjungan_dicatat.v1", R)
    assert {r.kind for r in grant.rules} == {TOPIC}, "no group, cluster or transactional rights"


def test_retired_and_gateway_apps_have_no_principal() -> None:
    assert application_grant(_app("lama", "dinkes", status="retired"), NAMES) is None
    assert application_grant(_app("web", "dinkes", method="gateway"), NAMES) is None
    assert application_grant(_app("cdc", "dinkes", method="capture"), NAMES) is not None


def test_a_recorded_kafka_principal_is_used() -> None:
    grant = application_grant(_app("simpus", "dinkes", kafka_principal="User:dinkes-simpus"), NAMES)
    assert grant is not None and grant.user == "dinkes-simpus"
    data = DirectoryData(applications=(_app("simpus", "dinkes", kafka_principal="dinkes-simpus"),))
    assert managed_users(data, NAMES)("dinkes-simpus")


def test_a_subscriber_reads_only_its_own_topic_and_groups() -> None:
    grant = subscriber_grant(_sub("dinsos"), NAMES)
    other = subscriber_grant(_sub("dinsos-bansos"), NAMES)
    assert grant is not None and other is not None
    rules = grant.rules
    assert permits(rules, TOPIC, "lintas.deliver.dinsos", R)
    assert not permits(rules, TOPIC, "lintas.deliver.dinsos-bansos", R)
    assert not permits(rules, TOPIC, "lintas.canonical.dukcapil.kematian_dicatat.v1", R)
    assert not permits(rules, TOPIC, "opd.dukcapil.kematian_dicatat.v1", R)
    assert not permits(rules, TOPIC, "lintas.deliver.dinsos", W)
    assert permits(rules, GROUP, "lintas-sub-dinsos", R)
    assert permits(rules, GROUP, "lintas-sub-dinsos.replay", R)
    # A name that merely starts with another's must not reach the other's groups.
    assert not permits(rules, GROUP, "lintas-sub-dinsos-bansos", R)
    assert not permits(other.rules, GROUP, "lintas-sub-dinsos", R)
    # Its SDK's own dead-letter topic, which it creates the first time.
    assert permits(rules, TOPIC, "lintas.deliver.dinsos.dlq", W)
    assert permits(rules, TOPIC, "lintas.deliver.dinsos.dlq", C)
    assert not permits(rules, TOPIC, "lintas.deliver.dinsos-bansos.dlq", W)


def test_disabled_and_webhook_subscribers() -> None:
    disabled = subscriber_grant(_sub("sikesra", status=SubscriberStatus.DISABLED), NAMES)
    assert disabled is not None and disabled.rules == frozenset(), "credential kept, no rights"
    hook = _sub("bapenda", mode="webhook", webhook_url="https://bapenda.example/hook")
    assert subscriber_grant(hook, NAMES) is None


def test_sample_directory_grants(sample: DirectoryData) -> None:
    grants = desired_grants(sample, names=NAMES)
    for app in sample.applications:
        user = f"app-{app.id}"
        talks = app.status is not AppStatus.RETIRED and app.method is not IntegrationMethod.GATEWAY
        assert (user in grants) == talks, app.id
        if not talks:
            continue
        rules = grants[user].rules
        assert permits(rules, TOPIC, f"opd.{app.opd}.x.v1", W)
        for opd in sample.opds:
            if opd.code != app.opd:
                assert not permits(rules, TOPIC, f"opd.{opd.code}.x.v1", W), (app.id, opd.code)
    kafka_subs = [s for s in sample.subscribers if s.mode.value == "kafka"]
    assert {f"sub-{s.name}" for s in kafka_subs} <= set(grants)
    # Nobody from the directory gets rights on the cluster or on the platform's topics.
    for grant in grants.values():
        assert all(r.kind in (TOPIC, GROUP) for r in grant.rules)
        assert not permits(grant.rules, TOPIC, "lintas.directory", W)
        assert not permits(grant.rules, TOPIC, "lintas.dlq", R)


def test_two_entries_on_one_principal_are_refused() -> None:
    data = DirectoryData(
        applications=(
            _app("simpus", "dinkes", kafka_principal="User:shared"),
            _app("sikda", "dinkes", kafka_principal="User:shared"),
        )
    )
    with pytest.raises(ValueError, match="User:shared"):
        desired_grants(data, names=NAMES)


def test_services_get_least_privilege() -> None:
    topology = ServiceTopology(streams_app_id="lintas-streams")
    grants = {g.owner: g for g in service_grants(topology, NAMES)}
    assert set(grants) == {r.value for r in ServiceRole}
    assert all(g.kind is GrantKind.SERVICE and g.user.startswith("svc-") for g in grants.values())
    worker = grants["worker"].rules
    changelog = "lintas-streams-dedup-changelog"
    for op in (C, R, W):
        assert permits(worker, TOPIC, changelog, op), op
    assert not permits(worker, TOPIC, "lintas-streamsx-dedup-changelog", C)
    assert permits(worker, GROUP, "lintas-streams", R)
    assert permits(worker, TOPIC, "opd.dukcapil.kematian_dicatat.v1", R)
    assert not permits(worker, TOPIC, "opd.dukcapil.kematian_dicatat.v1", W)
    assert permits(worker, TOPIC, "lintas.canonical.dukcapil.kematian_dicatat.v1", W)
    assert not permits(worker, TOPIC, "lintas.directory", W)
    gateway = grants["gateway"].rules
    assert permits(gateway, TOPIC, "opd.dinkes.a.v1", W)
    assert not permits(gateway, TOPIC, "opd.dinkes.a.v1", R)
    assert not permits(gateway, TOPIC, "lintas.canonical.dinkes.a.v1", W)
    sink = grants["sink"].rules
    assert permits(sink, TOPIC, "lintas.canonical.dinkes.a.v1", R)
    assert not permits(sink, TOPIC, "opd.dinkes.a.v1", R)
    assert permits(sink, GROUP, "lintas-store", R)
    assert grants["directory"].rules == frozenset(
        {AclRule("svc-directory", TOPIC, "lintas.directory", Pattern.LITERAL, W)}
    )
    no_cluster = [r for g in grants.values() for r in g.rules if r.kind is ResourceKind.CLUSTER]
    assert no_cluster == []
    for g in grants.values():
        assert not any(r.operation in (Operation.ALTER, Operation.DELETE) for r in g.rules)


def test_each_service_is_kept_out_of_the_other_stages() -> None:
    # The refusals the private-stack test (test_stack_principals.py) sees on the broker.
    grants = {g.owner: g.rules for g in service_grants(ServiceTopology(), NAMES)}
    opd, canonical = "opd.dukcapil.kematian_dicatat.v1", "lintas.canonical.dukcapil.x.v1"
    assert not permits(grants["gateway"], TOPIC, canonical, D), "not even its name"
    assert not permits(grants["sink"], TOPIC, opd, D)
    assert not permits(grants["deliver"], TOPIC, canonical, D)
    assert not permits(grants["deliver"], TOPIC, "lintas.directory", W)
    # The deliverer dead-letters to (and creates) a webhook subscriber's .dlq topic.
    for op in (W, C):
        assert permits(grants["deliver"], TOPIC, "lintas.deliver.sipbansos.dlq", op)
    # The portal reads every group's lag but may join none, so it cannot steal events.
    for group in ("lintas-store", "lintas-streams", "lintas-sub-sikesra"):
        assert permits(grants["portal"], GROUP, group, D)
        assert not permits(grants["portal"], GROUP, group, R)
    # Only the workers and the portal's dead-letter replay write canonical topics.
    writers = {role for role, rules in grants.items() if permits(rules, TOPIC, canonical, W)}
    assert writers == {"worker", "portal"}


def test_service_topic_prefix_moves_the_stream_topics() -> None:
    # The workers and the sink follow LINTAS_STREAMS__TOPIC_PREFIX; the services that follow
    # the directory read the topic their own settings name (they do not use the prefix).
    grants = {g.owner: g for g in service_grants(ServiceTopology(topic_prefix="t1."), NAMES)}
    for role in ("worker", "sink"):
        topics = {r.name for r in grants[role].rules if r.kind is TOPIC}
        assert all(t.startswith(("t1.", "lintas-streams-")) for t in topics), topics
    assert permits(grants["gateway"].rules, TOPIC, "lintas.directory", R)
    assert permits(grants["gateway"].rules, TOPIC, "opd.dinkes.a.v1", W)


def test_plan_touches_only_managed_principals() -> None:
    want = AclRule("app-a", TOPIC, "opd.dinkes.", Pattern.PREFIXED, W)
    stale = AclRule("app-a", TOPIC, "opd.dukcapil.", Pattern.PREFIXED, W)
    deny = AclRule("app-a", TOPIC, "x", Pattern.LITERAL, R, allow=False)
    foreign = AclRule("someone-else", TOPIC, "opd.", Pattern.PREFIXED, R)
    plan = plan_acls([want], [stale, deny, foreign], NAMES.is_managed)
    assert plan.add == (want,)
    assert set(plan.remove) == {stale, deny}
    assert plan_acls([want], [want, foreign], NAMES.is_managed).empty
    # Scoped to one user, other managed users are left alone.
    other = AclRule("app-b", TOPIC, "opd.dinsos.", Pattern.PREFIXED, W)
    scoped = plan_acls([], [stale, other], NAMES.is_managed, only=["app-a"])
    assert scoped.remove == (stale,)


def test_plan_security_credentials() -> None:
    app = Grant(user="app-a", kind=GrantKind.APPLICATION, owner="a")
    svc = Grant(user="svc-worker", kind=GrantKind.SERVICE, owner="worker")
    svc2 = Grant(user="svc-sink", kind=GrantKind.SERVICE, owner="sink")
    grants = {g.user: g for g in (app, svc, svc2)}
    plan = plan_security(
        grants,
        [],
        {"app-retired", "svc-worker", "svc-sink", "lintas", "t1.app-x"},
        NAMES.is_managed,
        service_password_known=lambda user: user == "svc-sink",
    )
    assert plan.drop_credentials == ("app-retired",), "never the admin or another prefix's"
    assert plan.missing_credentials == ("app-a",)
    assert plan.service_credentials == ("svc-worker",), "known file and credential: kept"
    assert not plan.empty
    text = "\n".join(plan.lines())
    assert "- credential User:app-retired" in text and "! no credential User:app-a" in text

from __future__ import annotations

from lintas.schemas import load_catalog
from lintas.settings import KafkaSettings
from lintas.topics import DIRECTORY_TOPIC, DLQ_TOPIC, Action, desired_topics, plan_changes


def test_every_catalog_type_gets_its_opd_and_canonical_topic() -> None:
    catalog = load_catalog()
    specs = {s.name: s for s in desired_topics(KafkaSettings(), event_types=catalog)}
    for et in catalog:
        assert et.topic in specs and et.canonical_topic in specs
    assert specs[DIRECTORY_TOPIC].configs["cleanup.policy"] == "compact"
    assert int(specs[DLQ_TOPIC].configs["retention.ms"]) <= 30 * 86_400_000


def test_subscribers_get_delivery_topics() -> None:
    names = {s.name for s in desired_topics(KafkaSettings(), subscribers=["dinsos", "bapenda"])}
    assert {"lintas.deliver.dinsos", "lintas.deliver.bapenda"} <= names


def test_plan_creates_grows_refuses_shrink_and_fixes_drift() -> None:
    specs = desired_topics(KafkaSettings(partitions=4), subscribers=["a", "b", "c"])
    by_name = {s.name: s for s in specs}
    existing = {"lintas.deliver.a": 2, "lintas.deliver.b": 8, "lintas.deliver.c": 4}
    configs = {name: dict(by_name[name].configs) for name in existing}
    configs["lintas.deliver.c"]["retention.ms"] = "1"
    plan = {(c.spec.name, c.action): c for c in plan_changes(specs, existing, configs)}
    assert ("lintas.deliver.a", Action.ADD_PARTITIONS) in plan
    assert ("lintas.deliver.b", Action.REFUSED_SHRINK) in plan
    drift = plan[("lintas.deliver.c", Action.ALTER_CONFIG)]
    assert drift.config_changes["retention.ms"][0] == "1"
    assert (DLQ_TOPIC, Action.CREATE) in plan
    assert "refused" in plan[("lintas.deliver.b", Action.REFUSED_SHRINK)].describe()


def test_plan_is_empty_when_everything_matches() -> None:
    specs = desired_topics(KafkaSettings())
    existing = {s.name: s.partitions for s in specs}
    configs = {s.name: dict(s.configs) for s in specs}
    assert plan_changes(specs, existing, configs) == []

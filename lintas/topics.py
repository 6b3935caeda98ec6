"""Provision every topic the platform needs, explicitly (the broker never auto-creates).

``lintas topics sync`` compares what the catalog and the directory need with what the
cluster has and applies the difference: missing topics are created with the platform
partition count and replication settings, topics with fewer partitions are grown, and
retention drift is corrected. It never shrinks a topic (Kafka cannot, and data would be lost)
and never deletes one. ``--dry-run`` prints the plan without applying it.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lintas.exceptions import ConfigurationError
from lintas.kafka import KafkaConnection, create_admin
from lintas.settings import KafkaSettings, Settings

__all__ = [
    "DIRECTORY_TOPIC",
    "DLQ_TOPIC",
    "METRICS_TOPIC",
    "Action",
    "TopicChange",
    "TopicSpec",
    "apply_plan",
    "desired_topics",
    "directory_subscribers",
    "platform_topics",
    "plan_changes",
    "sync_topics",
    "type_retention_days",
]

DLQ_TOPIC = "lintas.dlq"
DIRECTORY_TOPIC = "lintas.directory"
METRICS_TOPIC = "lintas.metrics"
_DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, kw_only=True)
class TopicSpec:
    """What one topic should look like."""

    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str] = field(default_factory=dict)
    purpose: str = ""


class Action(enum.StrEnum):
    CREATE = "create"
    ADD_PARTITIONS = "add-partitions"
    ALTER_CONFIG = "alter-config"
    REFUSED_SHRINK = "refused-shrink"


@dataclass(frozen=True, kw_only=True)
class TopicChange:
    action: Action
    spec: TopicSpec
    current_partitions: int | None = None
    config_changes: dict[str, tuple[str | None, str]] = field(default_factory=dict)

    def describe(self) -> str:
        name = self.spec.name
        if self.action is Action.CREATE:
            return (
                f"create {name} (partitions={self.spec.partitions}, "
                f"rf={self.spec.replication_factor}, {_fmt(self.spec.configs)})"
            )
        if self.action is Action.ADD_PARTITIONS:
            return (
                f"grow {name} from {self.current_partitions} to {self.spec.partitions} partitions"
            )
        if self.action is Action.REFUSED_SHRINK:
            return (
                f"keep {name} at {self.current_partitions} partitions: "
                f"shrinking to {self.spec.partitions} is refused (Kafka cannot shrink a topic)"
            )
        changes = ", ".join(f"{k}: {old} -> {new}" for k, (old, new) in self.config_changes.items())
        return f"alter {name}: {changes}"


def _fmt(configs: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(configs.items()))


def _retention(days: float) -> str:
    return str(int(days * _DAY_MS))


def type_retention_days(event_type: Any, default: float) -> float:
    """How long an event type's topics keep its events: ``retention_days`` of its ``.avsc``.

    Raises:
        ConfigurationError: the value is not a number of days in (0, 3650]; a typo must
            not keep personal data forever (Kafka reads ``-1`` as "no limit").
    """
    value = event_type.schema.get("retention_days", default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3650:
        raise ConfigurationError(
            f"retention_days of {event_type.id}",
            f"{value!r} is not a number of days above 0 and at most 3650",
            hint="Fix the event type's .avsc (schemas/catalog/<opd>/<event>.v<N>.avsc).",
        )
    return float(value)


def platform_topics(
    settings: KafkaSettings, *, subscribers: Iterable[str] = (), partitions: int | None = None
) -> list[TopicSpec]:
    """Every topic of the current catalog and directory (the CLI's and ``lintas up``'s view)."""
    from lintas.schemas import load_catalog

    return desired_topics(
        settings, event_types=load_catalog(), subscribers=subscribers, partitions=partitions
    )


async def directory_subscribers(settings: Settings) -> list[str]:
    """Names of the directory's subscribers, each of which gets a delivery topic."""
    from lintas.directory import Directory

    async with await Directory.open(settings, publish=False) as directory:
        return [s.name for s in await directory.list_subscribers()]


def desired_topics(
    settings: KafkaSettings,
    *,
    event_types: Iterable[Any] = (),
    subscribers: Iterable[str] = (),
    partitions: int | None = None,
) -> list[TopicSpec]:
    """Every topic the catalog's event types, the subscribers and the platform need.

    Args:
        settings: partition count, replication and retention defaults.
        event_types: catalog event types (``lintas.schemas.EventType``); each may set
            ``retention_days`` in its ``.avsc``.
        subscribers: subscriber names; each gets ``lintas.deliver.<name>``.
        partitions: overrides ``settings.partitions`` (tests).
    """
    count = partitions or settings.partitions
    rf = settings.replication_factor
    base = {"min.insync.replicas": str(settings.min_insync_replicas)}
    specs: list[TopicSpec] = []
    types = [(et, type_retention_days(et, settings.retention_days)) for et in event_types]
    # A delivery topic carries any of the types a subscriber is routed: it keeps nothing
    # longer than the shortest of them may be kept.
    delivery_days = min([settings.retention_days, *(days for _, days in types)])
    for et, days in types:
        configs = {**base, "retention.ms": _retention(days), "cleanup.policy": "delete"}
        specs.append(TopicSpec(name=et.topic, partitions=count, replication_factor=rf,
                               configs=configs, purpose=f"{et.id} as published"))  # fmt: skip
        specs.append(TopicSpec(name=et.canonical_topic, partitions=count, replication_factor=rf,
                               configs=configs, purpose=f"{et.id} validated"))  # fmt: skip
    for name in subscribers:
        specs.append(
            TopicSpec(
                name=f"lintas.deliver.{name}",
                partitions=count,
                replication_factor=rf,
                configs={**base, "retention.ms": _retention(delivery_days)},
                purpose=f"routed events for {name}",
            )
        )
    specs += [
        TopicSpec(
            name=DLQ_TOPIC,
            partitions=count,
            replication_factor=rf,
            configs={**base, "retention.ms": _retention(settings.dlq_retention_days)},
            purpose="dead letters with their reasons",
        ),
        TopicSpec(
            name=DIRECTORY_TOPIC,
            partitions=1,
            replication_factor=rf,
            configs={**base, "cleanup.policy": "compact"},
            purpose="directory changes, compacted by entity",
        ),
        TopicSpec(
            name=METRICS_TOPIC,
            partitions=count,
            replication_factor=rf,
            configs={**base, "retention.ms": _retention(settings.retention_days)},
            purpose="per-minute counts for the dashboard",
        ),
    ]
    return specs


def plan_changes(
    specs: Iterable[TopicSpec],
    existing: dict[str, int],
    existing_configs: dict[str, dict[str, str]],
) -> list[TopicChange]:
    """What has to change for the cluster to match ``specs``: pure logic, no I/O."""
    plan: list[TopicChange] = []
    for spec in specs:
        current = existing.get(spec.name)
        if current is None:
            plan.append(TopicChange(action=Action.CREATE, spec=spec))
            continue
        if current < spec.partitions:
            plan.append(
                TopicChange(action=Action.ADD_PARTITIONS, spec=spec, current_partitions=current)
            )
        elif current > spec.partitions:
            plan.append(
                TopicChange(action=Action.REFUSED_SHRINK, spec=spec, current_partitions=current)
            )
        have = existing_configs.get(spec.name, {})
        drift = {k: (have.get(k), v) for k, v in spec.configs.items() if have.get(k) != v}
        if drift:
            plan.append(TopicChange(action=Action.ALTER_CONFIG, spec=spec, config_changes=drift))
    return plan


async def _current(
    admin: Any, names: list[str]
) -> tuple[dict[str, int], dict[str, dict[str, str]]]:
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    listed = set(await admin.list_topics())
    present = [n for n in names if n in listed]
    partitions: dict[str, int] = {}
    configs: dict[str, dict[str, str]] = {}
    if not present:
        return partitions, configs
    for topic in await admin.describe_topics(present):
        partitions[topic["topic"]] = len(topic["partitions"])
    resources = [ConfigResource(ConfigResourceType.TOPIC, n) for n in present]
    for response in await admin.describe_configs(resources):
        for resource in response.resources:
            # (error_code, error_message, resource_type, resource_name, config_entries)
            name, entries = resource[3], resource[4]
            configs[name] = {entry[0]: entry[1] for entry in entries}
    return partitions, configs


async def _wait_visible(admin: Any, want: dict[str, int], timeout: float = 30.0) -> None:
    """Wait until the broker's metadata shows the topics with their partitions.

    CreateTopics returns when the controller has the topic; brokers learn of it a moment
    later. Returning before then would hand callers an "unknown topic" on their first send.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        described = await admin.describe_topics(list(want))
        ready = {
            t["topic"]
            for t in described
            if t["error_code"] == 0 and len(t["partitions"]) >= want[t["topic"]]
        }
        if ready >= set(want):
            return
        if asyncio.get_running_loop().time() > deadline:
            missing = sorted(set(want) - ready)
            raise TimeoutError(f"topics not visible after {timeout:.0f} s: {missing}")
        await asyncio.sleep(0.1)


async def apply_plan(admin: Any, plan: list[TopicChange]) -> None:
    """Apply a plan from :func:`plan_changes` (refused shrinks are left as they are)."""
    from aiokafka.admin import NewPartitions, NewTopic
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    creates = [
        NewTopic(
            c.spec.name, c.spec.partitions, c.spec.replication_factor, topic_configs=c.spec.configs
        )
        for c in plan
        if c.action is Action.CREATE
    ]
    if creates:
        await admin.create_topics(creates)
        await _wait_visible(admin, {t.name: t.num_partitions for t in creates})
    grows = {
        c.spec.name: NewPartitions(c.spec.partitions)
        for c in plan
        if c.action is Action.ADD_PARTITIONS
    }
    if grows:
        await admin.create_partitions(grows)
        await _wait_visible(admin, {name: p.total_count for name, p in grows.items()})
    # AlterConfigs replaces a topic's whole dynamic config, so send every desired key.
    alters = [
        ConfigResource(ConfigResourceType.TOPIC, c.spec.name, configs=c.spec.configs)
        for c in plan
        if c.action is Action.ALTER_CONFIG
    ]
    if alters:
        await admin.alter_configs(alters)


async def sync_topics(
    conn: KafkaConnection, specs: list[TopicSpec], *, dry_run: bool = False
) -> list[TopicChange]:
    """Make the cluster match ``specs``; returns the plan (applied unless ``dry_run``)."""
    admin = create_admin(conn)
    await admin.start()
    try:
        existing, configs = await _current(admin, [s.name for s in specs])
        plan = plan_changes(specs, existing, configs)
        if not dry_run:
            await apply_plan(admin, plan)
        return plan
    finally:
        await admin.close()

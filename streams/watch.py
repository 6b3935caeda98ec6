"""Which OPD topics exist, and the output topics a worker needs for them.

Workers subscribe to an explicit list of topics (faust's pattern subscription is not
reliable), so each worker looks at the cluster's topic list every
``LINTAS_STREAMS__TOPIC_REFRESH_S`` seconds: an ``opd.*`` topic it does not read yet (a new
event type, provisioned by ``lintas topics sync``) is added to its subscription once its
canonical topic exists and its partition count matches the dedup changelog's.

Workers only create topics that are missing (canonical topics of event types registered
while they run, their own dedup changelog); they never alter or grow existing ones, which is
``lintas topics sync``'s job.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lintas.kafka import KafkaConnection, create_admin
from lintas.schemas import EventType
from lintas.settings import Settings
from lintas.topics import Action, TopicChange, TopicSpec, apply_plan, desired_topics

from .dedup import changelog_topic_configs
from .exceptions import PartitionMismatch
from .naming import StreamTopics

__all__ = ["DEDUP_TABLE", "Scan", "TopicWatcher", "changelog_topic", "output_specs"]

log = logging.getLogger(__name__)

DEDUP_TABLE = "dedup"


def changelog_topic(app_id: str) -> str:
    """The dedup table's changelog topic (faust's name for it: ``<app id>-<table>-changelog``)."""
    return f"{app_id}-{DEDUP_TABLE}-changelog"


def output_specs(
    settings: Settings,
    names: StreamTopics,
    event_types: Iterable[EventType],
    subscribers: Iterable[str] = (),
) -> list[TopicSpec]:
    """The topics workers write for ``event_types`` and ``subscribers``: canonical, delivery,
    dead-letter, metrics, the directory they read, and the dedup changelog, each under the
    worker's prefix."""
    kafka = settings.kafka
    specs = [
        dataclasses.replace(spec, name=names.prefix + spec.name)
        for spec in desired_topics(kafka, event_types=event_types, subscribers=subscribers)
        if not spec.name.startswith("opd.")
    ]
    horizon = dt.timedelta(days=settings.streams.dedup_horizon_days)
    specs.append(
        TopicSpec(
            name=changelog_topic(settings.streams.app_id),
            partitions=kafka.partitions,
            replication_factor=kafka.replication_factor,
            configs={
                "min.insync.replicas": str(kafka.min_insync_replicas),
                **changelog_topic_configs(horizon),
            },
            purpose="event ids accepted by the stream workers (dedup)",
        )
    )
    return specs


@dataclass(frozen=True, kw_only=True)
class Scan:
    """OPD topics found on the cluster."""

    ready: list[str] = field(default_factory=list)
    """Topics the workers can read (their partition count matches)."""
    mismatched: list[PartitionMismatch] = field(default_factory=list)
    """Topics they cannot read until ``lintas topics sync`` fixes their partition count."""


class TopicWatcher:
    """Lists OPD topics and creates missing output topics, with one admin client.

    Args:
        conn: how to reach Kafka.
        settings: partition count, replication, retention, the worker's prefix and app id.
    """

    def __init__(self, conn: KafkaConnection, settings: Settings) -> None:
        self._conn = conn.with_client_id(f"{settings.streams.app_id}-watch")
        self._settings = settings
        self.names = StreamTopics(settings.streams.topic_prefix)
        self._admin: Any = None

    async def admin(self) -> Any:
        """The admin client the watcher uses (started on first use, closed by :meth:`close`)."""
        if self._admin is None:
            admin = create_admin(self._conn)
            await admin.start()
            self._admin = admin
        return self._admin

    async def close(self) -> None:
        if self._admin is not None:
            admin, self._admin = self._admin, None
            await admin.close()

    async def scan(self) -> Scan:
        """The OPD topics that exist now, split by whether their partitions fit."""
        admin = await self.admin()
        sources = sorted(t for t in await admin.list_topics() if self.names.is_source(t))
        if not sources:
            return Scan()
        expected = self._settings.kafka.partitions
        ready: list[str] = []
        mismatched: list[PartitionMismatch] = []
        for described in await admin.describe_topics(sources):
            if described["error_code"] != 0:
                continue  # deleted between list and describe, or not visible yet
            count = len(described["partitions"])
            if count == expected:
                ready.append(described["topic"])
            else:
                mismatched.append(PartitionMismatch(described["topic"], count, expected))
        return Scan(ready=sorted(ready), mismatched=mismatched)

    async def provision(
        self, event_types: Iterable[EventType], *, subscribers: Iterable[str] = ()
    ) -> list[str]:
        """Create the missing output topics for ``event_types`` and ``subscribers``; returns
        the names created."""
        admin = await self.admin()
        specs = output_specs(self._settings, self.names, event_types, subscribers)
        existing = set(await admin.list_topics())
        plan = [
            TopicChange(action=Action.CREATE, spec=spec)
            for spec in specs
            if spec.name not in existing
        ]
        if plan:
            try:
                await apply_plan(admin, plan)
            except Exception as exc:  # another worker may have created one at the same time
                if "TopicAlreadyExists" not in type(exc).__name__:
                    raise
            log.info("created topics: %s", ", ".join(c.spec.name for c in plan))
        return [c.spec.name for c in plan]

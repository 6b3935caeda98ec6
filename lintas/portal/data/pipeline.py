"""Sources: Kafka offsets. Consumer lag per group, webhook delivery queues, store backlog.

Each panel is computed from committed and end offsets (see :class:`KafkaInspector`), so it
needs no cooperation from the services it describes and shows the truth even when one of
them is down.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from lintas.directory import DeliveryMode, Subscriber

from .kafka import KafkaInspector
from .sections import DeliveryHealth, Freshness, GroupLag, Panel

__all__ = ["delivery_panel", "freshness_panel", "lag_panel"]

SOURCE = "kafka"
CANONICAL_PREFIX = "lintas.canonical."


def _by_topic(offsets: dict[Any, int]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for tp, value in offsets.items():
        totals[tp.topic] += value
    return totals


async def lag_panel(kafka: KafkaInspector) -> Panel[list[GroupLag]]:
    """Every consumer group that commits to Kafka, with its total lag, largest first."""
    lags = await kafka.lags()
    rows = [
        GroupLag(group=group, lag=sum(parts.values()), topics=sorted(_by_topic(parts)))
        for group, parts in lags.items()
        if parts
    ]
    rows.sort(key=lambda r: (-r.lag, r.group))
    return Panel.ok(rows, SOURCE) if rows else Panel.empty(SOURCE, rows)


async def delivery_panel(
    kafka: KafkaInspector, subscribers: list[Subscriber]
) -> Panel[list[DeliveryHealth]]:
    """Per webhook subscriber: events routed to it, not yet delivered, and given up on."""
    hooks = [s for s in subscribers if s.mode is DeliveryMode.WEBHOOK]
    if not hooks:
        return Panel.empty(SOURCE, [])
    lags = await kafka.lags()
    rows = []
    for sub in hooks:
        topic = sub.delivery_topic
        backlogs = [
            total for parts in lags.values() for t, total in _by_topic(parts).items() if t == topic
        ]
        rows.append(
            DeliveryHealth(
                subscriber=sub.name,
                status=sub.status.value,
                routed=await kafka.record_count([topic]),
                # The deliverer is the group furthest behind on the topic, if several read it.
                backlog=max(backlogs) if backlogs else None,
                failed=await kafka.record_count([f"{topic}.dlq"]),
            )
        )
    return Panel.ok(rows, SOURCE)


async def freshness_panel(kafka: KafkaInspector, *, now_ms: int | None = None) -> Panel[Freshness]:
    """The store sink's position on the canonical topics: backlog, and the age of the newest
    event it has consumed (its group is the one that commits on ``lintas.canonical.*``)."""
    committed = await kafka.committed()
    sink = {
        group: {tp: off for tp, off in parts.items() if tp.topic.startswith(CANONICAL_PREFIX)}
        for group, parts in committed.items()
    }
    sink = {g: parts for g, parts in sink.items() if parts}
    if not sink:
        return Panel.empty(SOURCE)
    # Only the store sink reads every canonical topic; pick the group covering the most.
    positions = max(sink.values(), key=len)
    ends = await kafka.end_offsets(list(positions))
    backlog = sum(max(ends.get(tp, off) - off, 0) for tp, off in positions.items())
    stamps = await kafka.last_timestamps(positions)
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    age = (now_ms - max(stamps.values())) / 1000 if stamps else None
    data = Freshness(
        backlog=backlog,
        newest_stored_age_s=age,
        topics=len({tp.topic for tp in positions}),
    )
    return Panel.ok(data, SOURCE)

"""Stage 5: route accepted events to their subscribers, minimised to the fields each may see.

Subscriptions live in the directory (PostgreSQL, published to the compacted
``lintas.directory`` topic). Each worker keeps a
:class:`~lintas.directory.view.DirectoryView` of that topic, so a subscription added, paused
or narrowed reaches every worker within seconds, without a restart. Which subscriptions match
and what each subscriber receives is decided by :mod:`lintas.directory.routing` (the same
functions ``lintas subscriptions test`` previews with), never here.

One record per subscriber and event, on ``lintas.deliver.<subscriber>`` (for webhook
subscribers too: the deliverer reads the same topic):

- value: the event with only the allowed fields (the union over the subscriber's matching
  subscriptions), Avro with that *projected* schema, registered under the
  TopicRecordNameStrategy subject ``<delivery topic>-<record full name>`` (a delivery topic
  carries several event types). Projections change when subscriptions do, and readers always
  use the writer schema, so these subjects are registered with compatibility ``NONE``;
- headers: the CloudEvents attributes (``ce_subject`` only when the subscriber may see the
  subject field) and ``lintas.subscriptions``, the matching subscriptions' names; nothing else
  of the producer's headers;
- key: the subject (one citizen's events stay in order) when the subscriber may see it, else
  the event id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from lintas.schemas import EventType, encode, parse_schema
from lintas.schemas.registry import SchemaRegistryClient

from .envelope import CE_SUBJECT, CONTENT_TYPE, Envelope
from .naming import StreamTopics

if TYPE_CHECKING:  # the directory package pulls in its database layer; the view is given
    from lintas.directory.routing import Route
    from lintas.directory.view import DirectoryView

__all__ = ["Delivery", "Router", "projected_schema"]

ALL_FIELDS = ("*",)
SUBSCRIPTIONS_HEADER = "lintas.subscriptions"


def projected_schema(event_type: EventType, fields: Sequence[str]) -> dict[str, Any]:
    """``event_type``'s schema with only ``fields`` (``("*",)``: all), in schema order."""
    schema = dict(event_type.schema)
    if tuple(fields) != ALL_FIELDS:
        keep = set(fields)
        schema["fields"] = [f for f in event_type.schema["fields"] if f["name"] in keep]
    return schema


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """One routed record for one subscriber."""

    subscriber: str
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class _Projection:
    schema_id: int
    parsed: dict[str, Any]
    names: frozenset[str]


def _merged_fields(routes: Sequence[Route]) -> tuple[str, ...]:
    if any(r.subscription.fields == ALL_FIELDS for r in routes):
        return ALL_FIELDS
    names: set[str] = set()
    for r in routes:
        names.update(r.subscription.fields)
    return tuple(sorted(names))


class Router:
    """Turns an accepted event into the deliveries its subscriptions call for.

    Args:
        registry: where projected schemas are registered.
        names: the worker's topic names (delivery topics under its prefix).
        view: the directory; started by :meth:`start` unless it already runs.
    """

    def __init__(
        self, registry: SchemaRegistryClient, names: StreamTopics, view: DirectoryView
    ) -> None:
        self._registry = registry
        self._names = names
        self.view = view
        self._projections: dict[tuple[str, str, tuple[str, ...]], _Projection] = {}
        self._lock = asyncio.Lock()
        self._started = False

    async def start(self) -> None:
        """Start the directory view (once); returns when it has caught up with the topic.

        Raises:
            DirectoryUnavailable: the directory topic cannot be read (retriable).
        """
        if self._started:
            return
        async with self._lock:
            if not self._started:
                await self.view.start()
                self._started = True

    async def stop(self) -> None:
        if self._started:
            await self.view.stop()

    async def deliveries(
        self,
        event_type: EventType,
        envelope: Envelope,
        payload: Mapping[str, Any],
        *,
        key: bytes | None,
        headers: Sequence[tuple[str, bytes]],
    ) -> list[Delivery]:
        """One delivery per subscriber whose subscriptions match the event.

        Raises:
            DirectoryUnavailable, RegistryUnavailable: retriable; try again later.
        """
        await self.start()
        routes = self.view.route(event_type.id, payload)
        if not routes:
            return []
        by_subscriber: dict[str, list[Route]] = {}
        for r in routes:
            by_subscriber.setdefault(r.subscription.subscriber, []).append(r)
        out: list[Delivery] = []
        for subscriber, matched in sorted(by_subscriber.items()):
            fields = _merged_fields(matched)
            topic = self._names.deliver(subscriber)
            projection = await self._projection(topic, event_type, fields)
            visible = fields == ALL_FIELDS or event_type.subject_field in fields
            value = encode(
                projection.schema_id,
                projection.parsed,
                {k: v for k, v in payload.items() if k in projection.names},
            )
            names = ",".join(sorted(r.subscription.name for r in matched))
            out.append(
                Delivery(
                    subscriber=subscriber,
                    topic=topic,
                    key=key if visible else envelope.id.encode(),
                    value=value,
                    headers=[
                        *(
                            (k, v)
                            for k, v in headers
                            if (k.startswith("ce_") or k == CONTENT_TYPE)
                            and (visible or k != CE_SUBJECT)
                        ),
                        (SUBSCRIPTIONS_HEADER, names.encode()),
                    ],
                )
            )
        return out

    async def _projection(
        self, topic: str, event_type: EventType, fields: tuple[str, ...]
    ) -> _Projection:
        cache_key = (topic, event_type.id, fields)
        found = self._projections.get(cache_key)
        if found is not None:
            return found
        schema = projected_schema(event_type, fields)
        subject = f"{topic}-{event_type.full_name}"
        # Projections follow the subscriptions, not an evolution readers rely on.
        await self._registry.set_compatibility("NONE", subject)
        schema_id = await self._registry.register(subject, orjson.dumps(schema).decode())
        found = _Projection(
            schema_id, parse_schema(schema), frozenset(f["name"] for f in schema["fields"])
        )
        self._projections[cache_key] = found
        return found

"""``lintas subscriptions test``: which recent events a subscription would deliver, and what.

Reads the most recent records of the OPD topics the subscription's event types name (the
end of each partition minus ``--limit``), decodes them through the schema registry and
runs them through :func:`lintas.directory.matches` and :func:`lintas.directory.project`,
the functions routing uses, so the preview shows exactly what routing would do. Nothing is
committed: the consumer has no group and only reads.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from lintas.directory import SubscriptionStatus, matched_event_types, matches, project

from ._app import console, err_console, settings_of
from ._dir_common import JsonOption, Unreachable, add_row, as_json, escape, print_json, read, when
from ._subscribers import SubscriptionArg, subscriptions_app

if TYPE_CHECKING:
    from lintas.directory import Subscription
    from lintas.kafka import KafkaConnection
    from lintas.schemas import Catalog, EventType

__all__ = ["Outcome", "Preview", "PreviewRecord", "TopicRead", "evaluate", "preview"]

# Starting a client and asking for metadata or offsets is quick when Kafka is up; more than
# this means it is not, and the command must say so rather than hang.
_KAFKA_CALL_TIMEOUT_S = 10.0
_POLL_MS = 500
_SHOWN = 20
_REASON_CHARS = 240


class Outcome(StrEnum):
    MATCHED = "matched"
    NOT_MATCHED = "not_matched"
    UNDECODABLE = "undecodable"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Raw:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


@dataclass(frozen=True, slots=True, kw_only=True)
class PreviewRecord:
    """One record read: where it is, and what the subscription would do with it."""

    event_type: str
    topic: str
    partition: int
    offset: int
    timestamp: dt.datetime
    event_id: str | None
    outcome: Outcome
    delivered: dict[str, Any] | None = None
    """The projected payload, for matched records only."""
    reason: str | None = None
    """Why the record could not be decoded, for undecodable ones."""


@dataclass(slots=True, kw_only=True)
class TopicRead:
    event_type: str
    topic: str
    exists: bool
    read: int = 0
    complete: bool = True
    """False when the read deadline passed before the end of every partition."""


@dataclass(slots=True, kw_only=True)
class Preview:
    subscription: Subscription
    limit: int
    topics: list[TopicRead]
    records: list[PreviewRecord] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        return sum(r.outcome is outcome for r in self.records)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = as_json(
            {
                "subscription": self.subscription,
                "evaluated_as_active": self.subscription.status is not SubscriptionStatus.ACTIVE,
                "limit": self.limit,
                "topics": [
                    {
                        "event_type": t.event_type,
                        "topic": t.topic,
                        "exists": t.exists,
                        "read": t.read,
                        "complete": t.complete,
                    }
                    for t in self.topics
                ],
                "counts": {o.value: self.count(o) for o in Outcome},
                "records": [
                    {
                        "event_type": r.event_type,
                        "topic": r.topic,
                        "partition": r.partition,
                        "offset": r.offset,
                        "timestamp": r.timestamp,
                        "event_id": r.event_id,
                        "outcome": r.outcome.value,
                        "delivered": r.delivered,
                        "reason": r.reason,
                    }
                    for r in self.records
                ],
            }
        )
        return doc


def evaluate(
    subscription: Subscription, event_type_id: str, record: Mapping[str, Any]
) -> tuple[Outcome, dict[str, Any] | None]:
    """Whether routing would deliver ``record`` under ``subscription``, and which fields."""
    if matches(subscription, event_type_id, record):
        return Outcome.MATCHED, project(subscription, record)
    return Outcome.NOT_MATCHED, None


async def _bounded(awaitable: Any, what: str, conn: KafkaConnection) -> Any:
    from aiokafka.errors import KafkaError

    try:
        return await asyncio.wait_for(awaitable, _KAFKA_CALL_TIMEOUT_S)
    except (TimeoutError, KafkaError, OSError) as exc:
        reason = str(exc) or type(exc).__name__
        raise Unreachable(
            f"Kafka at {conn.bootstrap} did not answer ({what}): {reason}.",
            hint="Is Kafka running (`lintas status`)? Check LINTAS_KAFKA_BOOTSTRAP and the "
            "credentials.",
        ) from exc


async def _partitions(conn: KafkaConnection, topics: list[str]) -> dict[str, list[int]]:
    """The partition ids of each topic that exists (a consumer only knows assigned ones)."""
    from lintas.kafka import create_admin

    admin = create_admin(conn.with_client_id("lintas-subscription-test"))
    await _bounded(admin.start(), "connecting", conn)
    try:
        existing = set(await _bounded(admin.list_topics(), "listing topics", conn))
        present = [t for t in topics if t in existing]
        if not present:
            return {}
        described = await _bounded(admin.describe_topics(present), "describing topics", conn)
        return {
            d["topic"]: sorted(p["partition"] for p in d["partitions"])
            for d in described
            if d["error_code"] == 0
        }
    finally:
        try:
            await asyncio.wait_for(admin.close(), _KAFKA_CALL_TIMEOUT_S)
        except (TimeoutError, Exception):  # the answer is complete; a slow goodbye is not news
            err_console.print("[dim]Kafka admin client did not close cleanly[/]")


async def _read_recent(
    conn: KafkaConnection, reads: list[TopicRead], limit: int, timeout: float
) -> list[_Raw]:
    """The last ``limit`` records of each topic (as of now), newest last."""
    from aiokafka.structs import TopicPartition

    from lintas.kafka import create_consumer

    partitions = await _partitions(conn, [r.topic for r in reads])
    tps = [TopicPartition(t, p) for t, parts in partitions.items() for p in parts]
    for r in reads:
        r.exists = r.topic in partitions
    if not tps:
        return []
    consumer = create_consumer(conn.with_client_id("lintas-subscription-test"), group_id=None)
    await _bounded(consumer.start(), "connecting", conn)
    try:
        consumer.assign(tps)
        begins = await _bounded(consumer.beginning_offsets(tps), "reading offsets", conn)
        ends = await _bounded(consumer.end_offsets(tps), "reading offsets", conn)
        pending = set()
        for tp in tps:
            # Each partition's last `limit` records hold the topic's last `limit` records.
            start = max(begins[tp], ends[tp] - limit)
            if start < ends[tp]:
                consumer.seek(tp, start)
                pending.add(tp)
        raws: list[_Raw] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while pending and loop.time() < deadline:
            batch = await _bounded(
                consumer.getmany(*pending, timeout_ms=_POLL_MS), "reading records", conn
            )
            for tp, messages in batch.items():
                # Later arrivals are not part of "recent as of now".
                raws += [_raw(m) for m in messages if m.offset < ends[tp]]
            for tp in list(pending):
                # position, not the last offset seen: transaction markers take offsets too.
                if await _bounded(consumer.position(tp), "reading offsets", conn) >= ends[tp]:
                    pending.discard(tp)
        incomplete = {tp.topic for tp in pending}
        for r in reads:
            r.complete = r.topic not in incomplete
        return raws
    finally:
        try:
            await asyncio.wait_for(consumer.stop(), _KAFKA_CALL_TIMEOUT_S)
        except (TimeoutError, Exception):  # the answer is complete; a slow goodbye is not news
            err_console.print("[dim]Kafka consumer did not stop cleanly[/]")


def _raw(message: Any) -> _Raw:
    return _Raw(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=message.timestamp,
        value=message.value,
        headers=tuple(message.headers or ()),
    )


def _short(reason: str) -> str:
    # fastavro's resolution errors quote both whole schemas; the gist fits in a line.
    return reason if len(reason) <= _REASON_CHARS else reason[: _REASON_CHARS - 1] + "…"


def _event_id(headers: Sequence[tuple[str, bytes]]) -> str | None:
    for key, value in headers:
        if key == "ce_id" and value is not None:
            return value.decode("utf-8", "replace")
    return None


async def preview(
    subscription: Subscription,
    catalog: Catalog,
    conn: KafkaConnection,
    registry_url: str,
    *,
    limit: int,
    timeout: float,
) -> Preview:
    """Run the most recent records of the subscription's topics through its rule.

    A paused subscription is evaluated as if it were active (that is the question asked).

    Raises:
        Unreachable: Kafka did not answer in time.
        RegistryUnavailable: the schema registry could not be reached.
    """
    from lintas.schemas import AvroDeserializer, DeserializationError, SchemaError
    from lintas.schemas.registry import RegistryUnavailable, SchemaRegistryClient

    rule = subscription.model_copy(update={"status": SubscriptionStatus.ACTIVE})
    types: list[EventType] = matched_event_types(subscription.event_types, catalog)
    reads = [TopicRead(event_type=et.id, topic=et.topic, exists=False) for et in types]
    raws = await _read_recent(conn, reads, limit, timeout)
    by_topic = {et.topic: et for et in types}
    result = Preview(subscription=subscription, limit=limit, topics=reads)
    async with SchemaRegistryClient(registry_url) as registry:
        readers = {et.id: AvroDeserializer(registry, reader=et) for et in types}
        for read_ in reads:
            mine = sorted(
                (r for r in raws if r.topic == read_.topic),
                key=lambda r: (r.timestamp_ms, r.partition, r.offset),
            )[-limit:]
            read_.read = len(mine)
            for raw in mine:
                et = by_topic[raw.topic]
                common: dict[str, Any] = {
                    "event_type": et.id,
                    "topic": raw.topic,
                    "partition": raw.partition,
                    "offset": raw.offset,
                    "timestamp": dt.datetime.fromtimestamp(raw.timestamp_ms / 1000, dt.UTC),
                    "event_id": _event_id(raw.headers),
                }
                try:
                    # No coordinates: the record carries them, and equal reasons then group.
                    record = await readers[et.id].deserialize(
                        raw.value,  # type: ignore[arg-type]  # None is reported as undecodable
                    )
                except RegistryUnavailable:
                    raise  # every other record would fail the same way: say it once
                except SchemaError as exc:
                    # Undecodable bytes, an unknown schema id, or the registry refusing
                    # this one id: the record is counted, the preview goes on.
                    reason = exc.reason if isinstance(exc, DeserializationError) else exc.message
                    result.records.append(
                        PreviewRecord(**common, outcome=Outcome.UNDECODABLE, reason=_short(reason))
                    )
                    continue
                outcome, delivered = evaluate(rule, et.id, record)
                result.records.append(PreviewRecord(**common, outcome=outcome, delivered=delivered))
    result.records.sort(key=lambda r: (r.timestamp, r.topic, r.partition, r.offset), reverse=True)
    return result


def _show(ctx: typer.Context, p: Preview) -> None:
    sub = p.subscription
    console.print(
        f"Subscription [bold]{sub.name}[/] (subscriber {sub.subscriber}) delivers: "
        f"{', '.join(sub.fields)}",
        highlight=False,
    )
    if sub.status is not SubscriptionStatus.ACTIVE:
        console.print(
            f"[yellow]It is {sub.status.value}: shown as if it were active.[/]", highlight=False
        )
    table = Table(title=f"Most recent records (up to {p.limit} per topic)", title_justify="left")
    for col in ("event type", "topic", "read", "matched", "not matched", "undecodable", "note"):
        table.add_column(col)
    for t in p.topics:
        mine = [r for r in p.records if r.topic == t.topic]
        note = "" if t.exists else "[red]topic missing (`lintas topics sync`)[/]"
        if not t.complete:
            note = "[yellow]stopped at --timeout[/]"
        counts = [str(sum(r.outcome is o for r in mine)) for o in Outcome]
        add_row(table, t.event_type, t.topic, t.read, *counts, Text.from_markup(note))
    console.print(table)
    matched = [r for r in p.records if r.outcome is Outcome.MATCHED]
    if matched:
        shown = Table(title="Would be delivered (newest first)", title_justify="left")
        for col in ("time", "event type", "partition/offset", "delivered fields"):
            shown.add_column(col, overflow="fold")
        for r in matched[:_SHOWN]:
            payload = ", ".join(f"{k}={v}" for k, v in (r.delivered or {}).items())
            add_row(
                shown, when(ctx, r.timestamp), r.event_type, f"{r.partition}/{r.offset}", payload
            )
        console.print(shown)
        if len(matched) > _SHOWN:
            console.print(f"... and {len(matched) - _SHOWN} more (use --json for all)")
    reasons = Counter(r.reason or "" for r in p.records if r.outcome is Outcome.UNDECODABLE)
    for reason, n in reasons.most_common(5):
        console.print(f"[yellow]{n} undecodable:[/] {escape(reason)}", highlight=False)
    console.print(
        f"{p.count(Outcome.MATCHED)} matched, {p.count(Outcome.NOT_MATCHED)} not matched, "
        f"{p.count(Outcome.UNDECODABLE)} undecodable, of {len(p.records)} read",
        highlight=False,
    )


@subscriptions_app.command("test")
def subscriptions_test(
    ctx: typer.Context,
    name: SubscriptionArg,
    limit: Annotated[
        int,
        typer.Option(min=1, max=100_000, help="Most recent records to read per event type topic."),
    ] = 200,
    timeout: Annotated[
        float,
        typer.Option(min=1, max=600, help="Seconds to spend reading before showing what came."),
    ] = 30.0,
    json: JsonOption = False,
) -> None:
    """Show which recent events a subscription would deliver, and exactly which fields.

    Reads the last --limit records of each OPD topic its event types match (nothing is
    consumed for real), decodes them and applies the subscription's filter and field list
    as routing does. Records that cannot be decoded are counted, not fatal.
    """
    from lintas.endpoints import resolve_endpoints
    from lintas.exceptions import StackError

    subscription, catalog = read(ctx, lambda d: _with_catalog(d, name))
    endpoints = resolve_endpoints(settings_of(ctx))
    if endpoints.registry_url is None:
        raise StackError(
            "No schema registry is configured and none runs in the local stack.",
            hint="Run `lintas up`, or set LINTAS_REGISTRY_URL.",
        )
    result = asyncio.run(
        preview(
            subscription,
            catalog,
            endpoints.kafka,
            endpoints.registry_url,
            limit=limit,
            timeout=timeout,
        )
    )
    if json:
        print_json(result.to_json())
    else:
        _show(ctx, result)


async def _with_catalog(d: Any, name: str) -> tuple[Subscription, Catalog]:
    return await d.get_subscription(name), d.catalog

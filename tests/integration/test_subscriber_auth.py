"""The subscriber SDK under a subscriber's own principal, on the real broker with its ACLs.

A subscriber that points at another subscriber's topic or group is refused at start with
``NotAuthorized`` naming the topic (or group) and the principal, where aiokafka alone would
wait for ever; its own topic it reads, and it dead-letters to its own ``.dlq`` topic,
creating it the first time; disabled while running (its ACLs removed), it stops with the
same error instead of hanging.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from security_helpers import Tenant, create_topics, delete_topics, forget_principals

from lintas.consumers import DeliveredEvent, NotAuthorized, Subscriber
from lintas.consumers._dlq import dlq_topic, header_text
from lintas.consumers.webhooks import read_dead_letters
from lintas.consumers.webhooks.testing import (
    delivery_headers,
    delivery_value,
    register_projection,
)
from lintas.directory.models import Subscriber as SubscriberEntry
from lintas.kafka import KafkaConnection, create_producer
from lintas.schemas import example_event, load_catalog
from lintas.schemas.registry import SchemaRegistryClient
from lintas.security import SecurityContext, provision, sync_entry
from lintas.settings import SecuritySettings, Settings

pytestmark = pytest.mark.asyncio(loop_scope="session")

KEMATIAN = load_catalog().get("dukcapil.kematian_dicatat.v1")
# Long enough for a loaded machine; a refusal comes in well under a second, a hang never.
REFUSED_WITHIN_S = 60.0


@dataclass
class Pair:
    """Two Kafka subscribers of one tenant, each with its own delivery topic."""

    tenant: Tenant
    ctx: SecurityContext
    admin: KafkaConnection
    settings: Settings

    def entry(self, letter: str, **extra: str) -> SubscriberEntry:
        return SubscriberEntry.model_validate(
            {"name": self.tenant.sub(letter), "opd": "dinsos", "mode": "kafka", **extra}
        )

    def login(self, letter: str) -> KafkaConnection:
        """A new password for the subscriber's principal: its connection."""
        return provision(self.ctx, self.admin, self.entry(letter)).connection(self.admin)

    def topic(self, letter: str) -> str:
        return f"lintas.deliver.{self.tenant.sub(letter)}"


@pytest.fixture
def pair(kafka_conn: KafkaConnection, tmp_path: Path) -> Iterator[Pair]:
    t = Tenant()
    settings = Settings(data_dir=tmp_path, security=SecuritySettings(principal_prefix=t.prefix))
    p = Pair(
        tenant=t, ctx=SecurityContext.from_settings(settings), admin=kafka_conn, settings=settings
    )
    topics = [p.topic("a"), p.topic("b")]
    create_topics(kafka_conn, topics)
    try:
        yield p
    finally:
        forget_principals(kafka_conn, t.names)
        delete_topics(kafka_conn, [*topics, dlq_topic(t.sub("a"))])


def _subscriber(
    pair: Pair, name: str, conn: KafkaConnection, registry_url: str, **options: object
) -> Subscriber:
    return Subscriber(
        name,
        settings=pair.settings,
        kafka=conn,
        registry_url=registry_url,
        **options,  # type: ignore[arg-type]
    )


async def _refusal(subscriber: Subscriber) -> NotAuthorized:
    with pytest.raises(NotAuthorized) as refused:
        await asyncio.wait_for(subscriber.start(), REFUSED_WITHIN_S)
    await subscriber.stop()
    return refused.value


async def _route(admin: KafkaConnection, registry_url: str, topic: str, count: int) -> list[str]:
    """``count`` events on a delivery topic, as the routing stage writes them: their ids."""
    async with SchemaRegistryClient(registry_url) as registry:
        schema_id, parsed = await register_projection(registry, topic, KEMATIAN, ["*"])
    record = example_event(KEMATIAN)
    producer = create_producer(admin)
    await producer.start()
    ids = [str(uuid.uuid4()) for _ in range(count)]
    try:
        for event_id in ids:
            await producer.send_and_wait(
                topic,
                key=record["nik"].encode(),
                value=delivery_value(schema_id, parsed, record),
                headers=delivery_headers(event_id, KEMATIAN, subject=record["nik"]),
            )
    finally:
        await producer.stop()
    return ids


async def test_another_subscribers_topic_is_refused_naming_topic_and_principal(
    pair: Pair, registry_url: str
) -> None:
    conn = await asyncio.to_thread(pair.login, "a")
    principal = f"User:{pair.tenant.names.subscriber(pair.tenant.sub('a'))}"
    other = pair.tenant.sub("b")

    refused = await _refusal(_subscriber(pair, other, conn, registry_url))
    assert (refused.topic, refused.group, refused.principal) == (pair.topic("b"), None, principal)
    assert pair.topic("b") in refused.message and principal in refused.message

    # A name with no topic at all is refused the same way: Kafka does not tell a principal
    # whether a topic it may not describe exists.
    ghost = f"ghost-{pair.tenant.tag}"
    refused = await _refusal(_subscriber(pair, ghost, conn, registry_url))
    assert refused.topic == f"lintas.deliver.{ghost}"


async def test_another_subscribers_group_is_refused(pair: Pair, registry_url: str) -> None:
    conn = await asyncio.to_thread(pair.login, "a")
    stolen = f"lintas-sub-{pair.tenant.sub('b')}"
    own = _subscriber(pair, pair.tenant.sub("a"), conn, registry_url, group_id=stolen)
    refused = await _refusal(own)
    assert (refused.topic, refused.group) == (None, stolen)
    assert refused.principal == f"User:{pair.tenant.names.subscriber(pair.tenant.sub('a'))}"


async def test_own_topic_read_and_dead_lettered_then_refused_once_disabled(
    pair: Pair, registry_url: str
) -> None:
    name = pair.tenant.sub("a")
    conn = await asyncio.to_thread(pair.login, "a")
    seen: list[str] = []
    ids: list[str] = []

    async def failing(event: DeliveredEvent) -> None:
        seen.append(event.id)
        raise RuntimeError("the aid register is down")

    # Each event fails once and is dead-lettered under the subscriber's own principal: the
    # first creates lintas.deliver.<name>.dlq, the second (a new process) finds it.
    for _ in range(2):
        [expected] = await _route(pair.admin, registry_url, pair.topic("a"), 1)
        ids.append(expected)
        async with _subscriber(pair, name, conn, registry_url, max_attempts=1) as subscriber:
            task = asyncio.create_task(subscriber.run(failing))
            deadline = asyncio.get_running_loop().time() + REFUSED_WITHIN_S
            while subscriber.dead_lettered < 1:
                assert not task.done(), task.exception()
                assert asyncio.get_running_loop().time() < deadline, "not dead-lettered"
                await asyncio.sleep(0.1)
            await subscriber.stop()
            await task
    assert seen == ids, "each event handled once, by the process that was running"
    letters = await read_dead_letters(pair.admin, name)
    assert sorted(header_text(list(r.headers), "ce_id") for r in letters) == sorted(ids)

    # Disabled while it runs: its ACLs go, and the loop stops with the refusal instead of
    # waiting for ever (whether the fetch or the group is refused first is the broker's
    # timing).
    async with _subscriber(pair, name, conn, registry_url) as subscriber:
        disabled = pair.entry("a", status="disabled")
        assert await asyncio.to_thread(sync_entry, pair.ctx, pair.admin, disabled)
        with pytest.raises(NotAuthorized) as refused:
            await asyncio.wait_for(subscriber.run(failing), REFUSED_WITHIN_S)
    assert refused.value.principal == f"User:{pair.tenant.names.subscriber(name)}"
    assert (refused.value.topic, refused.value.group) in (
        (pair.topic("a"), None),
        (None, subscriber.group_id),
    )

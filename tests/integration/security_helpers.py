"""Helpers for the security tests on the real broker: a tenant of unique names, clients that
report the broker's refusal instead of waiting, and clean-up of every principal made.

Each test works under its own principal prefix (``t<hex>.``) and its own OPD codes and
subscriber names, so the shared broker's other principals, ACLs and topics are never
touched; the prefix's principals, ACLs and topics are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, Producer

from lintas.kafka import KafkaConnection, create_admin
from lintas.security import PrincipalNames
from lintas.security._admin import SecurityAdmin

# Long enough for a loaded machine, short enough that a hang fails the test.
REFUSAL_S = 30.0


@dataclass
class Tenant:
    """Unique names for one test: a principal prefix, two OPDs, two subscribers."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @property
    def prefix(self) -> str:
        return f"t{self.tag}."

    @property
    def names(self) -> PrincipalNames:
        return PrincipalNames(self.prefix)

    @property
    def dinkes(self) -> str:
        return f"dinkes_{self.tag}"

    @property
    def dukcapil(self) -> str:
        return f"dukcapil_{self.tag}"

    def sub(self, letter: str) -> str:
        return f"sub{letter}-{self.tag}"


def create_topics(admin_conn: KafkaConnection, names: Iterable[str]) -> None:
    from aiokafka.admin import NewTopic

    async def run() -> None:
        admin = create_admin(admin_conn)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(n, 1, 1) for n in names])
        finally:
            await admin.close()

    asyncio.run(run())


def delete_topics(admin_conn: KafkaConnection, names: Iterable[str]) -> None:
    async def run() -> None:
        admin = create_admin(admin_conn)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            gone = [n for n in names if n in existing]
            if gone:
                await admin.delete_topics(gone)
        finally:
            await admin.close()

    asyncio.run(run())


def forget_principals(admin_conn: KafkaConnection, names: PrincipalNames) -> None:
    """Delete every ACL and SCRAM credential under the tenant's prefix."""
    with SecurityAdmin(admin_conn) as admin:
        admin.delete(admin.acls(names.is_managed))
        for user in admin.scram_users():
            if names.is_managed(user):
                admin.delete_credential(user)


def produce(conn: KafkaConnection, topic: str, value: bytes = b"x") -> str | None:
    """Send one record idempotently; None when delivered, else the broker's error name."""
    errors: list[str] = []
    delivered: list[bool] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(err.name())
        else:
            delivered.append(True)

    def on_error(err: Any) -> None:
        errors.append(err.name())

    producer = Producer(
        {
            **conn.confluent_config(),
            "enable.idempotence": True,
            "acks": "all",
            "message.timeout.ms": int(REFUSAL_S * 1000),
            "error_cb": on_error,
        }
    )
    producer.produce(topic, value, callback=on_delivery)
    deadline = time.monotonic() + REFUSAL_S
    while not (errors or delivered) and time.monotonic() < deadline:
        producer.poll(0.1)
    producer.purge()
    producer.flush(1)
    if delivered and not errors:
        return None
    return errors[0] if errors else "TIMED_OUT"


def consume_one(conn: KafkaConnection, topic: str, group: str) -> bytes | str:
    """Subscribe and read one record: its value, or the broker's error name."""
    errors: list[str] = []
    consumer = Consumer(
        {
            **conn.confluent_config(),
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "error_cb": lambda err: errors.append(err.name()),
        }
    )
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + REFUSAL_S
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if errors:
                return errors[0]
            if msg is None:
                continue
            if msg.error():
                return str(msg.error().name())
            value: bytes = msg.value()
            return value
        return "TIMED_OUT"
    finally:
        consumer.close()


def login_error(conn: KafkaConnection) -> str | None:
    """None when the broker accepts ``conn``'s credentials, else its error name."""
    errors: list[str] = []
    producer = Producer({**conn.confluent_config(), "error_cb": lambda e: errors.append(e.name())})
    deadline = time.monotonic() + REFUSAL_S
    while time.monotonic() < deadline:
        try:
            producer.list_topics(timeout=1)
            return None
        except Exception:
            producer.poll(0.1)
            if errors:
                return errors[0]
    return errors[0] if errors else "TIMED_OUT"

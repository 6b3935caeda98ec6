"""A principal the broker refuses gets ``NotAuthorized`` naming topic and principal: at once,
not spooled, not retried in a loop; spooled events for such a topic are kept apart."""

from __future__ import annotations

import asyncio
import secrets
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)
from producer_helpers import read_topic
from prometheus_client import CollectorRegistry

from lintas.kafka import KafkaConnection
from lintas.producers import DeliveryStatus, EventProducer, NotAuthorized, spool_status
from lintas.schemas import example_event, load_catalog, model_for
from lintas.settings import ProducerSettings, Settings

KEMATIAN = load_catalog().get("dukcapil.kematian_dicatat.v1")
KELAHIRAN = load_catalog().get("dukcapil.kelahiran_dicatat.v1")
HANG = 60


def _admin(conn: KafkaConnection) -> AdminClient:
    return AdminClient(conn.confluent_config())


def _wait(futures: dict[Any, Any]) -> None:
    for future in futures.values():
        future.result(30)


@pytest.fixture
def make_user(kafka_conn: KafkaConnection) -> Iterator[Callable[..., KafkaConnection]]:
    """``make_user(write_topics=[...])``: a SCRAM user with WRITE+DESCRIBE on those topics."""
    admin = _admin(kafka_conn)
    made: list[tuple[str, list[AclBinding]]] = []

    def make(write_topics: list[str]) -> KafkaConnection:
        name = f"test-app-{uuid.uuid4().hex[:8]}"
        password = secrets.token_urlsafe(16)
        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096)
        _wait(
            admin.alter_user_scram_credentials(
                [UserScramCredentialUpsertion(name, info, password.encode())]
            )
        )
        acls = [
            AclBinding(
                ResourceType.TOPIC,
                topic,
                ResourcePatternType.LITERAL,
                f"User:{name}",
                "*",
                operation,
                AclPermissionType.ALLOW,
            )
            for topic in write_topics
            for operation in (AclOperation.WRITE, AclOperation.DESCRIBE)
        ]
        if acls:
            _wait(admin.create_acls(acls))
        made.append((name, acls))
        return KafkaConnection(
            bootstrap=kafka_conn.bootstrap,
            username=name,
            password=password,
            security_protocol=kafka_conn.security_protocol,
            sasl_mechanism=kafka_conn.sasl_mechanism,
        )

    yield make
    for name, acls in made:
        if acls:
            filters = [
                AclBindingFilter(
                    acl.restype,
                    acl.name,
                    acl.resource_pattern_type,
                    acl.principal,
                    acl.host,
                    acl.operation,
                    acl.permission_type,
                )
                for acl in acls
            ]
            _wait(admin.delete_acls(filters))
        _wait(
            admin.alter_user_scram_credentials(
                [UserScramCredentialDeletion(name, ScramMechanism.SCRAM_SHA_512)]
            )
        )


def _producer(tmp_path: Path, conn: KafkaConnection, registry_url: str, **kwargs: Any) -> Any:
    settings = Settings(
        data_dir=tmp_path,
        producer=ProducerSettings(
            spool_dir=tmp_path / "spool", start_timeout_s=10, send_timeout_s=10, stop_timeout_s=3
        ),
    )
    options: dict[str, Any] = {
        "app": "siak",
        "opd": "dukcapil",
        "settings": settings,
        "connection": conn,
        "registry": registry_url,
        "metrics_registry": CollectorRegistry(),
    }
    return EventProducer(**{**options, **kwargs})


def _event(event_type: Any) -> Any:
    return model_for(event_type).model_validate(example_event(event_type))


async def test_a_refused_topic_raises_at_once_and_nothing_is_spooled(
    make_user: Callable[..., KafkaConnection],
    registry_url: str,
    topic_factory: Callable[..., Any],
    tmp_path: Path,
) -> None:
    allowed = await topic_factory("test.sdk.ok.", partitions=1)
    refused = await topic_factory("test.sdk.no.", partitions=1)
    conn = await asyncio.to_thread(make_user, [allowed])
    routes = {KEMATIAN.id: allowed, KELAHIRAN.id: refused}
    metrics = CollectorRegistry()
    route = {"topic_of": lambda t: routes[t.id], "metrics_registry": metrics}
    async with _producer(tmp_path, conn, registry_url, **route) as p:
        ok = await asyncio.wait_for(p.send(_event(KEMATIAN)), HANG)
        assert ok.status is DeliveryStatus.SENT
        for _ in range(3):  # every time, without a retry loop or a hang
            with pytest.raises(NotAuthorized) as caught:
                await asyncio.wait_for(p.send(_event(KELAHIRAN)), HANG)
            assert caught.value.topic == refused
            assert caught.value.principal == f"User:{conn.username}"
            assert refused in caught.value.message and conn.username in caught.value.message
        assert p.spooled == 0 and not p.spooling
        again = await p.send(_event(KEMATIAN))
        assert again.sent
        labels = {"producer": p.name, "reason": "not_authorized"}
        assert metrics.get_sample_value("lintas_producer_failed_total", labels) == 3


async def test_a_principal_without_any_right_fails_at_start(
    make_user: Callable[..., KafkaConnection], registry_url: str, tmp_path: Path
) -> None:
    conn = await asyncio.to_thread(make_user, [])
    producer = _producer(tmp_path, conn, registry_url)
    with pytest.raises(NotAuthorized) as caught:
        await asyncio.wait_for(producer.start(), HANG)
    assert caught.value.topic is None
    assert caught.value.principal == f"User:{conn.username}"


async def test_spooled_events_for_a_refused_topic_are_kept_apart_not_retried(
    make_user: Callable[..., KafkaConnection],
    kafka_conn: KafkaConnection,
    registry_url: str,
    topic_factory: Callable[..., Any],
    tmp_path: Path,
) -> None:
    allowed = await topic_factory("test.sdk.ok.", partitions=1)
    refused = await topic_factory("test.sdk.no.", partitions=1)
    conn = await asyncio.to_thread(make_user, [allowed])
    routes = {KEMATIAN.id: allowed, KELAHIRAN.id: refused}

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    nowhere = KafkaConnection(bootstrap=f"127.0.0.1:{port}", username="u", password="p")
    offline = _producer(tmp_path, nowhere, registry_url, topic_of=lambda t: routes[t.id])
    async with offline:
        # Spooled while offline, in this order: ok, refused, ok, refused, ok.
        order = [KEMATIAN, KELAHIRAN, KEMATIAN, KELAHIRAN, KEMATIAN]
        spooled = await offline.send_many([_event(t) for t in order])

    online = _producer(tmp_path, conn, registry_url, topic_of=lambda t: routes[t.id])
    async with online:
        await asyncio.wait_for(online.flush(30), HANG)
        assert online.spooled == 0
    (info,) = spool_status(online.settings)
    assert info.records == 0
    assert info.rejected == {f"not authorized: User:{conn.username} on {refused}": 2}
    reads = await read_topic(kafka_conn, allowed, partitions=1)
    assert [r.event_id for r in reads] == [spooled[i].event_id for i in (0, 2, 4)]


async def test_a_wrong_password_is_refused_at_start_not_taken_for_an_outage(
    make_user: Callable[..., KafkaConnection], registry_url: str, tmp_path: Path
) -> None:
    from dataclasses import replace

    from lintas.producers import NotAuthenticated

    good = make_user([])
    wrong = replace(good, password=good.password + "x")
    producer = _producer(tmp_path, wrong, registry_url)
    with pytest.raises(NotAuthenticated) as exc:
        await asyncio.wait_for(producer.start(), HANG)
    assert exc.value.principal == f"User:{good.username}"
    assert "authentication failed" in str(exc.value)
    assert not any(s.records for s in spool_status(producer.settings))

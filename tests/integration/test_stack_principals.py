"""`lintas up` runs each platform service as its own Kafka principal, end to end.

On a private stack: every service that talks to Kafka gets ``svc-<role>`` and its password
file in its environment, and the broker authenticates it as that principal, never as the
platform's super-user; each principal is refused what its ACLs leave out; and a real flow
works under them: an event published through the gateway reaches its OPD topic, the stream
worker writes it to its canonical topic, the store sink keeps it in ``store.raw_events``,
and its routed copy reaches a webhook subscriber. No service logs an authorization error
on the way, and every dashboard panel of the portal (lag, freshness, dead letters, ...)
reads its figures under the portal's principal.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import KafkaError
from confluent_kafka import Producer as ConfluentProducer
from producer_helpers import read_topic
from security_helpers import consume_one, produce
from store_helpers import wait_until

from lintas.consumers.webhooks.testing import WebhookReceiver
from lintas.deploy.local import LocalStack
from lintas.directory import Directory
from lintas.endpoints import resolve_endpoints
from lintas.kafka import KafkaConnection
from lintas.portal.bootstrap import ADMIN_NAME, admin_password_file
from lintas.portal.testing import sign_in
from lintas.producers.gateway.openapi import example_json
from lintas.schemas import load_catalog
from lintas.security import IssuedCredential, PrincipalNames
from lintas.security.reconcile import service_password_file

pytestmark = pytest.mark.asyncio(loop_scope="session")

KEMATIAN = "dukcapil.kematian_dicatat.v1"
OPD_TOPIC = f"opd.{KEMATIAN}"
CANONICAL_TOPIC = f"lintas.canonical.{KEMATIAN}"
KAFKA_ROLES = ("gateway", "worker", "sink", "deliver", "portal")
FIELDS = ["nik", "tanggal_kematian", "kode_wilayah"]
BODY = example_json(load_catalog().get(KEMATIAN))
# Bounds on a loaded 2-core machine; the flow itself takes seconds.
FLOW_S = 120.0
# What aiokafka, faust and the SDKs log when the broker refuses a principal something.
REFUSED = re.compile(
    r"AuthorizationFailed|AUTHORIZATION_FAILED|NotAuthorized|not authorized", re.IGNORECASE
)


def _login(stack: LocalStack, admin: KafkaConnection, role: str) -> KafkaConnection:
    """A connection as the service's principal, with the password file its process reads."""
    user = PrincipalNames().service(role)
    path = service_password_file(stack.data_dir / "secrets" / "kafka-users", user)
    return IssuedCredential(user=user, password=path.read_text().strip()).connection(admin)


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def _topic_error(conn: KafkaConnection, topic: str) -> int | None:
    """The broker's error code for ``topic`` in a metadata answer to ``conn`` (None: visible)."""
    producer = ConfluentProducer(conn.confluent_config())
    error = producer.list_topics(topic, timeout=30).topics[topic].error
    return None if error is None else int(error.code())


async def _seed(stack: LocalStack, hook_url: str, tag: str) -> tuple[str, str]:
    """A gateway application of Dukcapil and a webhook subscriber of deaths: the token
    and the subscriber's name.

    The directory is opened without publishing, as a change committed while the stack
    was down: the next `lintas up` creates the new delivery topic, then publishes, so the
    deliverer never subscribes to a topic that does not exist yet.
    """
    async with await Directory.open(stack.settings, publish=False) as directory:
        await directory.add_opd({"code": "dukcapil", "name": "Disdukcapil Kota Bandung"})
        await directory.add_opd({"code": "dinsos", "name": "Dinas Sosial Kota Bandung"})
        _, key = await directory.add_application(
            {
                "id": f"siak-{tag}",
                "name": "SIAK",
                "opd": "dukcapil",
                "method": "gateway",
                "produces": [KEMATIAN],
            }
        )
        assert key is not None
        subscriber = f"sipbansos-{tag}"
        await directory.add_subscriber(
            {"name": subscriber, "opd": "dinsos", "mode": "webhook", "webhook_url": hook_url}
        )
        await directory.add_subscription(
            {
                "name": f"dinsos-kematian-{tag}",
                "subscriber": subscriber,
                "event_types": [KEMATIAN],
                "fields": FIELDS,
                "purpose": "Stopping social aid to the deceased (UU 27/2022 Pasal 20).",
            }
        )
    return key.token, subscriber


async def _publish(gateway_url: str, token: str, body: dict[str, Any]) -> str:
    """POST one event until the gateway's directory view knows the new key; its event id."""
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
    async with httpx.AsyncClient(base_url=gateway_url, timeout=60) as client:
        deadline = asyncio.get_running_loop().time() + FLOW_S
        while True:
            answer = await client.post(f"/v1/events/{KEMATIAN}", json=body, headers=headers)
            # 401 (key not yet seen) and 503 (directory not read yet) publish nothing.
            if answer.status_code not in (401, 503):
                break
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.5)
    assert answer.status_code == 202, answer.text
    event = answer.json()
    assert event["status"] == "sent", event
    return str(event["id"])


async def _record_with_id(conn: KafkaConnection, topic: str, event_id: str) -> Any:
    """The record of ``topic`` whose ``ce_id`` is ``event_id``, waited for."""

    async def find() -> Any:
        for read in await read_topic(conn, topic):
            if read.event_id == event_id:
                return read
        return None

    deadline = asyncio.get_running_loop().time() + FLOW_S
    while (found := await find()) is None:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"event {event_id} not in {topic} within {FLOW_S:g} s")
        await asyncio.sleep(0.5)
    return found


def _dashboard(portal_url: str, password: str) -> dict[str, Any]:
    with httpx.Client(base_url=portal_url, timeout=60) as client:
        assert sign_in(client, ADMIN_NAME, password).status_code == 303
        doc: dict[str, Any] = client.get("/api/dashboard").json()
        return doc


async def _until(check: Callable[[], Any], what: str) -> Any:
    deadline = asyncio.get_running_loop().time() + FLOW_S
    while not (value := await asyncio.to_thread(check)):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not within {FLOW_S:g} s")
        await asyncio.sleep(1)
    return value


async def test_services_run_as_their_principals_and_the_flow_works(
    private_stack: LocalStack,
) -> None:
    state = await asyncio.to_thread(private_stack.up)
    admin = resolve_endpoints(private_stack.settings)
    platform_password_file = state.kafka_password_file
    assert platform_password_file is not None

    # Each Kafka service's process holds its own principal and password file, not the
    # super-user's; the registry holds no Kafka credential at all.
    for role in KAFKA_ROLES:
        env = _environ(state.components[role].pid or 0)
        assert env["LINTAS_KAFKA__USERNAME"] == f"svc-{role}", role
        assert env["LINTAS_KAFKA__PASSWORD_FILE"].endswith(f"/kafka-users/svc-{role}.password")
        assert platform_password_file not in env.values(), role
    registry_env = _environ(state.components["registry"].pid or 0)
    assert not any(k.startswith("LINTAS_KAFKA") for k in registry_env), registry_env.keys()

    # The principals are refused what their ACLs leave out.
    gateway = _login(private_stack, admin.kafka, "gateway")
    sink = _login(private_stack, admin.kafka, "sink")
    worker = _login(private_stack, admin.kafka, "worker")
    deliver = _login(private_stack, admin.kafka, "deliver")
    portal = _login(private_stack, admin.kafka, "portal")
    auth_failed = KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert await asyncio.to_thread(_topic_error, gateway, OPD_TOPIC) is None
    assert await asyncio.to_thread(_topic_error, gateway, CANONICAL_TOPIC) == auth_failed
    assert await asyncio.to_thread(consume_one, gateway, CANONICAL_TOPIC, "lintas-store") in (
        "TOPIC_AUTHORIZATION_FAILED",
        "GROUP_AUTHORIZATION_FAILED",
    )
    assert await asyncio.to_thread(produce, gateway, CANONICAL_TOPIC) == (
        "TOPIC_AUTHORIZATION_FAILED"
    )
    assert await asyncio.to_thread(produce, worker, OPD_TOPIC) == "TOPIC_AUTHORIZATION_FAILED"
    assert await asyncio.to_thread(produce, sink, OPD_TOPIC) == "TOPIC_AUTHORIZATION_FAILED"
    assert await asyncio.to_thread(_topic_error, sink, OPD_TOPIC) == auth_failed
    assert await asyncio.to_thread(_topic_error, deliver, CANONICAL_TOPIC) == auth_failed
    assert await asyncio.to_thread(produce, deliver, "lintas.directory") == (
        "TOPIC_AUTHORIZATION_FAILED"
    )
    # The portal may look at every group's lag, but join none of them.
    assert await asyncio.to_thread(consume_one, portal, CANONICAL_TOPIC, "lintas-store") == (
        "GROUP_AUTHORIZATION_FAILED"
    )

    # A real flow, under those principals.
    tag = uuid.uuid4().hex[:6]
    async with WebhookReceiver() as receiver:
        token, subscriber = await _seed(private_stack, receiver.url, tag)
        state = await asyncio.to_thread(private_stack.up)
        gateway_url = state.components["gateway"].url
        assert gateway_url is not None
        event_id = await _publish(gateway_url, token, BODY)

        published = await _record_with_id(admin.kafka, OPD_TOPIC, event_id)
        assert dict(published.headers)["ce_source"] == f"/opd/dukcapil/siak-{tag}".encode()
        await _record_with_id(admin.kafka, CANONICAL_TOPIC, event_id)
        stored = await wait_until(
            admin.pg_dsn,
            f"SELECT count(*) FROM store.raw_events WHERE event_id = '{event_id}'",
            lambda n: n == 1,
            timeout=FLOW_S,
        )
        assert stored == 1, f"event {event_id} not in store.raw_events"
        await receiver.wait_for_ids({event_id}, timeout=FLOW_S)
        delivered = next(r for r in receiver.requests if r.webhook_id == event_id)
        assert set(delivered.payload["data"]) <= set(FIELDS), delivered.payload
        assert delivered.payload["data"]["nik"] == BODY["nik"]
        await _record_with_id(admin.kafka, f"lintas.deliver.{subscriber}", event_id)

    # The portal reads its figures under its own principal: no panel fails, and the
    # worker's group (which has now committed) shows up in the lag panel.
    password = admin_password_file(private_stack.data_dir).read_text().strip()
    portal_url = state.components["portal"].url
    assert portal_url is not None

    def lag_shows_the_worker() -> dict[str, Any] | None:
        doc = _dashboard(portal_url, password)
        return doc if "lintas-streams" in str(doc["panels"]["lag"]) else None

    doc = await _until(lag_shows_the_worker, "the worker's group in the portal's lag panel")
    failed = {k: p for k, p in doc["panels"].items() if p["state"] == "error"}
    assert failed == {}, failed

    # Every service logged in as its principal, never as the super-user, and none was
    # refused anything on the way. (The portal logs warnings only: its panels above are
    # the proof that it reads Kafka.)
    for role in KAFKA_ROLES:
        log = (private_stack.data_dir / "logs" / f"{role}.log").read_text(errors="replace")
        if role != "portal":
            assert f"Authenticated as svc-{role} via SCRAM-SHA-512" in log, role
        assert "Authenticated as lintas " not in log, role
        refusals = [line for line in log.splitlines() if REFUSED.search(line)]
        assert refusals == [], (role, refusals[:5])

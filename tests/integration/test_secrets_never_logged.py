"""No secret the platform issues ever reaches a log.

A private stack (every service, Kafka, PostgreSQL with pgaudit) runs a realistic day of an
operator's work through the ``lintas`` CLI: OPDs, applications with API keys and Kafka
passwords, a key rotation, a new Kafka password, webhook subscribers with signing secrets
and a rotation, a Kafka subscriber, a portal user. Each secret is then used where it is
meant to be (the gateway takes the key, the producer SDK the password, the deliverer signs
with the webhook secret, the portal checks the password), misused where operators would
misuse it (a superseded password, a wrong portal password), and revoked. Afterwards every
log file under the stack's data directory, the CLI's error output, this process's log
records and the audit log are searched for every secret: none is found.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from prometheus_client import CollectorRegistry
from security_helpers import login_error
from store_helpers import wait_until

from lintas.audit import list_entries
from lintas.consumers.analytics import derived_password
from lintas.consumers.webhooks.testing import WebhookReceiver
from lintas.deploy.local import LocalStack
from lintas.endpoints import resolve_endpoints
from lintas.kafka import KafkaConnection
from lintas.portal.testing import sign_in
from lintas.postgres import connect
from lintas.producers import DeliveryStatus, EventProducer
from lintas.producers.gateway.openapi import example_json
from lintas.schemas import example_event, load_catalog, model_for

pytestmark = pytest.mark.asyncio(loop_scope="session")

KEMATIAN = load_catalog().get("dukcapil.kematian_dicatat.v1")
FLOW_S = 120.0
# Shorter strings are not secrets Lintas issues, and would match by chance.
MIN_SECRET = 12


class Run:
    """The CLI against the private stack; it remembers every secret shown and every error
    output written."""

    def __init__(self, stack: LocalStack) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LINTAS_")}
        self.env["LINTAS_DATA_DIR"] = str(stack.data_dir)
        self.secrets: set[str] = set()
        self.stderr: list[str] = []

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "lintas.cli", *args],
            env=self.env, capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        self.stderr.append(done.stderr)
        assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
        return done

    def issued(self, *args: str) -> dict[str, Any]:
        """A command's ``--json`` answer; the secrets in it are remembered."""
        doc: dict[str, Any] = json.loads(self.cli(*args, "--json").stdout)
        self.secrets |= set(_secret_values(doc))
        return doc


def _secret_values(doc: Any, key: str = "") -> Iterable[str]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _secret_values(v, k)
    elif isinstance(doc, list):
        for v in doc:
            yield from _secret_values(v, key)
    elif isinstance(doc, str) and key in ("token", "password", "signing_secret"):
        yield doc


def _files_secrets(secrets_dir: Path) -> set[str]:
    """Every secret the stack keeps in files (platform and service passwords, keys)."""
    found = set()
    for path in secrets_dir.rglob("*"):
        if path.is_file():
            for line in path.read_text(errors="replace").splitlines():
                if len(line.strip()) >= MIN_SECRET and "-----" not in line:
                    found.add(line.strip())
    return found


def _forms(secret: str) -> set[str]:
    """How a secret could appear: as is, URL-quoted (in a DSN), and an API key's secret part."""
    forms = {secret, quote(secret, safe="")}
    if secret.startswith("lk_"):
        forms.add(secret.split("_", 2)[2])
    return {f for f in forms if len(f) >= MIN_SECRET}


def _logs(data_dir: Path) -> dict[str, str]:
    """Every log the stack wrote: services, Kafka, PostgreSQL (text and jsonlog)."""
    roots = [data_dir / "logs", data_dir / "postgres" / "log"]
    return {
        str(p): p.read_text(errors="replace")
        for root in roots
        for p in root.rglob("*")
        if p.is_file()
    }


async def _gateway_accepts(url: str, token: str) -> str:
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        deadline = asyncio.get_running_loop().time() + FLOW_S
        while True:
            answer = await client.post(
                f"/v1/events/{KEMATIAN.id}", json=example_json(KEMATIAN), headers=headers
            )
            if answer.status_code not in (401, 503) or (
                asyncio.get_running_loop().time() > deadline
            ):
                break
            await asyncio.sleep(0.5)
        # A key with a wrong secret part: refused, and not logged either.
        wrong = {"Authorization": f"Bearer {token[:-6]}abcdef"}
        refused = await client.post(
            f"/v1/events/{KEMATIAN.id}", json=example_json(KEMATIAN), headers=wrong
        )
    assert answer.status_code == 202, answer.text
    assert refused.status_code == 401
    return str(answer.json()["id"])


async def _produce_as(conn: KafkaConnection, settings: Any, registry_url: str) -> None:
    from lintas.schemas.registry import SchemaRegistryClient

    async with SchemaRegistryClient(registry_url) as registry:
        producer = EventProducer(
            app="siak", opd="dukcapil", settings=settings, connection=conn, registry=registry,
            metrics_registry=CollectorRegistry(),
        )  # fmt: skip
        await asyncio.wait_for(producer.start(), FLOW_S)
        try:
            event = model_for(KEMATIAN).model_validate(example_event(KEMATIAN))
            delivery = await asyncio.wait_for(producer.send(event), FLOW_S)
        finally:
            await asyncio.wait_for(producer.stop(), FLOW_S)
    assert delivery.status is DeliveryStatus.SENT


def _portal_sign_ins(url: str, name: str, password: str) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        assert sign_in(client, name, password + "-salah").status_code == 401
        assert sign_in(client, name, password).status_code == 303
        assert client.get("/audit").status_code == 200


async def test_no_issued_secret_reaches_any_log(
    private_stack: LocalStack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stack = private_stack
    state = await asyncio.to_thread(stack.up)
    run = Run(stack)
    tag = uuid.uuid4().hex[:6]
    admin = resolve_endpoints(stack.settings)

    async with WebhookReceiver() as receiver:
        await asyncio.to_thread(run.cli, "opd", "add", "dukcapil", "--name", "Disdukcapil")
        await asyncio.to_thread(run.cli, "opd", "add", "dinsos", "--name", "Dinas Sosial")
        siak = await asyncio.to_thread(
            run.issued, "apps", "add", "siak", "--name", "SIAK", "--opd", "dukcapil",
            "--method", "sdk", "--produces", KEMATIAN.id,
        )  # fmt: skip
        first_password = siak["kafka"]["password"]
        await asyncio.to_thread(
            run.issued, "apps", "add", f"epajak-{tag}", "--name", "e-Pajak", "--opd", "dukcapil",
            "--method", "gateway", "--produces", KEMATIAN.id,
        )  # fmt: skip
        rotated = await asyncio.to_thread(
            run.issued, "apps", "rotate-key", f"epajak-{tag}", "--overlap", "24h"
        )
        renewed = await asyncio.to_thread(run.issued, "apps", "kafka-password", "siak")
        webhook = await asyncio.to_thread(
            run.issued, "subscribers", "add", "sikesra", "--opd", "dinsos", "--mode", "webhook",
            "--url", receiver.url,
        )  # fmt: skip
        newer = await asyncio.to_thread(
            run.issued, "subscribers", "rotate-secret", "sikesra", "--overlap", "1h"
        )
        receiver.set_secrets([webhook["signing_secret"], newer["signing_secret"]])
        await asyncio.to_thread(
            run.issued, "subscribers", "add", "bapenda-pbb", "--opd", "dinsos", "--mode", "kafka"
        )
        await asyncio.to_thread(
            run.cli, "subscriptions", "add", "kematian-ke-sikesra", "--subscriber", "sikesra",
            "--event-type", KEMATIAN.id, "--field", "nik", "--field", "tanggal_kematian",
            "--purpose", "Menghentikan bansos bagi warga yang meninggal (UU 27/2022).",
        )  # fmt: skip
        portal_password = "kata-sandi-operator-rahasia-" + uuid.uuid4().hex[:8]
        (tmp_path / "pw").write_text(portal_password + "\n")
        await asyncio.to_thread(
            run.cli, "portal", "user", "add", "siti", "--role", "operator",
            "--password-file", str(tmp_path / "pw"),
        )  # fmt: skip
        run.secrets |= {portal_password, portal_password + "-salah"}
        await asyncio.to_thread(run.cli, "query", "SELECT 1 AS satu")
        # The deliverer learnt of the subscriber before its delivery topic existed: the next
        # `lintas up` creates the topic and starts the deliverer again, as after a deploy.
        await asyncio.to_thread(stack.down, only="deliver")
        state = await asyncio.to_thread(stack.up)

        # Each secret used where it belongs.
        gateway_url = state.components["gateway"].url
        assert gateway_url is not None
        event_id = await _gateway_accepts(gateway_url, rotated["api_key"]["token"])
        app_conn = KafkaConnection(
            bootstrap=admin.kafka.bootstrap,
            username=renewed["kafka"]["username"],
            password=renewed["kafka"]["password"],
        )
        await _produce_as(app_conn, stack.settings, state.components["registry"].url or "")
        # The superseded password is refused (and the refusal logged without it).
        stale = KafkaConnection(
            bootstrap=admin.kafka.bootstrap, username=app_conn.username, password=first_password
        )
        assert await asyncio.to_thread(login_error, stale) == "_AUTHENTICATION"
        try:
            await receiver.wait_for_ids({event_id}, timeout=FLOW_S)  # signed with the secret
        except TimeoutError:
            logs = {n: (stack.data_dir / "logs" / f"{n}.log") for n in ("worker", "deliver")}
            tails = {n: p.read_text(errors="replace")[-3000:] for n, p in logs.items()}
            raise AssertionError(f"event {event_id} was not delivered: {tails}") from None
        portal_url = state.components["portal"].url
        assert portal_url is not None
        await asyncio.to_thread(_portal_sign_ins, portal_url, "siti", portal_password)
        await wait_until(
            admin.pg_dsn,
            f"SELECT count(*) FROM store.raw_events WHERE event_id = '{event_id}'",
            lambda n: n == 1,
            timeout=FLOW_S,
        )
        await asyncio.to_thread(run.cli, "apps", "revoke", "siak", "--force")

    # Secrets the platform keeps for itself count too.
    run.secrets |= _files_secrets(stack.data_dir / "secrets")
    platform = (stack.data_dir / "secrets" / "postgres.password").read_text().strip()
    run.secrets |= {derived_password(platform, login) for login in ("lintas_query",)}
    conn = await connect(admin.pg_dsn)
    try:
        entries = await list_entries(conn, limit=10_000)
    finally:
        await conn.close()
    # Stop the services so that everything they buffer is written out.
    await asyncio.to_thread(stack.down)
    assert len(run.secrets) >= 15, sorted(s[:4] for s in run.secrets)

    places = _logs(stack.data_dir)
    # The search looks where the run wrote: the server's jsonlog, Kafka's and each service's.
    assert any(p.endswith("postgres.json") for p in places)
    assert any(p.endswith("server.log") for p in places) and any("gateway" in p for p in places)
    assert sum(len(text) for text in places.values()) > 50_000
    places["CLI error output"] = "\n".join(run.stderr)
    places["this process's log records"] = caplog.text
    places["lintas.audit_log"] = json.dumps(
        [[e.actor, e.action, e.target, e.details] for e in entries], default=str
    )
    assert {"api_key.rotated", "webhook_secret.rotated", "portal.sign_in_failed"} <= {
        e.action for e in entries
    }
    leaks = [
        (where, secret[:4] + "…")
        for secret in sorted(run.secrets)
        for form in _forms(secret)
        for where, text in places.items()
        if form in text
    ]
    assert leaks == [], leaks

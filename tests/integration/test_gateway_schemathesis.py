"""schemathesis against the gateway's own /openapi.json: every operation, 500+ generated
requests (valid and invalid), and not one answer in the 5xx range.

The gateway runs for real (its directory view, producer, idempotency store) on the shared
broker and database, serving from a thread of its own so schemathesis' synchronous client
does not block it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import hypothesis
import pytest_asyncio
import schemathesis
from gateway_helpers import GatewayThread, prepare
from hypothesis import HealthCheck
from prometheus_client import CollectorRegistry
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    status_code_conformance,
)

from lintas.kafka import KafkaConnection
from lintas.producers.gateway import Gateway

MIN_CASES = 500
EVENT_EXAMPLES = 25  # per operation and generation mode (valid / invalid data)
PROBE_EXAMPLES = 5


@pytest_asyncio.fixture(loop_scope="session")
async def served(
    kafka_conn: KafkaConnection,
    fresh_db: str,
    registry_url: str,
    topic_factory: Callable[..., Any],
    tmp_path: Path,
) -> AsyncIterator[tuple[str, str]]:
    settings, topic, token, directory = await prepare(
        kafka_conn=kafka_conn,
        pg_dsn=fresh_db,
        topic_factory=topic_factory,
        tmp_path=tmp_path,
        # Generated requests come fast: the limit is tested elsewhere.
        gateway={"rate_limit_per_s": 1e6, "rate_limit_burst": 10_000_000},
    )

    def make() -> Gateway:
        return Gateway(
            settings,
            kafka=kafka_conn,
            pg_dsn=fresh_db,
            registry=registry_url,
            topic_of=lambda _: topic,
            metrics_registry=CollectorRegistry(),
        )

    try:
        with GatewayThread(make) as thread:
            assert thread.gateway is not None
            for _ in range(600):
                try:
                    thread.gateway.verify_api_key(token)
                    break
                except Exception:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("the gateway never saw the application's key")
            yield thread.url, token
    finally:
        await directory.close()


def test_no_generated_request_gets_a_server_error(served: tuple[str, str]) -> None:
    url, token = served
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    auth = {"Authorization": f"Bearer {token}"}
    checks = [not_a_server_error, status_code_conformance, content_type_conformance]
    cases: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15

    for operation in operations:
        is_event = operation.method.upper() == "POST"
        modes = [GenerationMode.POSITIVE]
        if is_event:
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            examples = EVENT_EXAMPLES if is_event else PROBE_EXAMPLES
            _exercise(operation, mode, examples, url, auth, checks, cases, statuses, failures)

    total = sum(cases.values())
    print(f"{total} generated requests; answers by status: {dict(sorted(statuses.items()))}")
    assert not failures, "\n\n".join(failures[:5])
    assert not [code for code in statuses if code >= 500]
    assert total >= MIN_CASES, cases
    # The valid cases were taken, not only refused: some events went through.
    assert statuses[202] > 0
    assert set(cases) == {op.label for op in operations}


def _exercise(
    operation: Any,
    mode: GenerationMode,
    examples: int,
    url: str,
    auth: dict[str, str],
    checks: list[Any],
    cases: Counter[str],
    statuses: Counter[int],
    failures: list[str],
) -> None:
    """Send up to ``examples`` generated requests of one operation, recording the answers."""

    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.generate],
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=url, headers=auth, timeout=60)
        cases[operation.label] += 1
        statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=checks)
        except Exception as exc:
            failures.append(f"{operation.label} {response.status_code}: {exc}"[:2000])

    run()

"""A real portal process per test, on a fresh database, with an operator and a viewer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from portal_support import OPERATOR, VIEWER, Portal, add_user, portal_env

from lintas.directory import Directory
from lintas.endpoints import Endpoints
from lintas.portal.testing import PortalProcess


@pytest_asyncio.fixture(loop_scope="session")
async def portal(
    fresh_db: str,
    endpoints: Endpoints,
    registry_url: str,
    topic_factory: Callable[..., Any],
    tmp_path: Path,
) -> AsyncIterator[Portal]:
    # Topics of its own, so a test neither sees nor disturbs the shared platform topics.
    topics = {
        "LINTAS_PORTAL__DIRECTORY_TOPIC": await topic_factory(
            "test.portal.directory.", partitions=1, **{"cleanup.policy": "compact"}
        ),
        "LINTAS_PORTAL__METRICS_TOPIC": await topic_factory("test.portal.metrics."),
        "LINTAS_PORTAL__DLQ_TOPIC": await topic_factory("test.portal.dlq."),
    }
    data_dir = tmp_path / "data"
    env = portal_env(endpoints, fresh_db, data_dir, registry_url) | topics
    add_user(env, tmp_path, OPERATOR[0], "operator", OPERATOR[1])
    add_user(env, tmp_path, VIEWER[0], "viewer", VIEWER[1])
    process = PortalProcess(env, log_path=tmp_path / "portal.log")
    process.start()
    try:
        yield Portal(url=process.url, dsn=fresh_db, data_dir=data_dir, process=process, env=env)
    finally:
        process.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def directory(portal: Portal) -> AsyncIterator[Directory]:
    """The portal's directory, opened beside it (changes stay in the outbox)."""
    async with await Directory.open(portal.settings(), pg_dsn=portal.dsn, publish=False) as d:
        yield d


@pytest.fixture
def shots(output_dir: Path) -> Iterator[Path]:
    folder = output_dir / "portal"
    folder.mkdir(parents=True, exist_ok=True)
    yield folder

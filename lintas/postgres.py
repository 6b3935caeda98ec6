"""The one factory for PostgreSQL connections (asyncpg)."""

from __future__ import annotations

from typing import Any

import asyncpg

__all__ = ["connect", "create_pool", "redact_dsn"]


def _session_settings(application_name: str) -> dict[str, str]:
    # Storage and session time are UTC; display conversion happens at the edges.
    return {"application_name": application_name, "timezone": "UTC"}


async def connect(dsn: str, *, application_name: str = "lintas", **kwargs: Any) -> Any:
    """One asyncpg connection to ``dsn`` with the platform's session settings."""
    return await asyncpg.connect(dsn, server_settings=_session_settings(application_name), **kwargs)


async def create_pool(
    dsn: str,
    *,
    application_name: str = "lintas",
    min_size: int = 1,
    max_size: int = 10,
    **kwargs: Any,
) -> Any:
    """An asyncpg pool to ``dsn`` with the platform's session settings."""
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        server_settings=_session_settings(application_name),
        **kwargs,
    )


def redact_dsn(dsn: str) -> str:
    """``dsn`` with its password replaced by ``***``, for logs and human output."""
    scheme, sep, rest = dsn.partition("://")
    if not sep or "@" not in rest:
        return dsn
    creds, at, host = rest.rpartition("@")
    user, colon, _ = creds.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}{at}{host}"

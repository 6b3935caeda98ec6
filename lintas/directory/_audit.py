"""The directory's audit entries: credentials issued, rotated and revoked.

Each is written with the connection of the change it describes, inside its transaction
(:meth:`DirectoryBase._tx`): a change that rolls back leaves no entry, and a change whose
entry cannot be written does not happen. Entries name key and secret ids, never secrets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lintas.audit import AuditAction, record

__all__ = ["key_issued", "keys_revoked", "webhook_secret_issued"]


async def key_issued(conn: Any, app_id: str, key_id: str) -> None:
    """A new API key; a rotation when the application still has other valid keys."""
    others = await conn.fetch(
        "SELECT id, expires_at FROM lintas.dir_api_keys WHERE app_id = $1 AND id <> $2 "
        "AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()) ORDER BY id",
        app_id,
        key_id,
    )
    details: dict[str, Any] = {"key_id": key_id}
    if others:
        details["previous_keys"] = {r["id"]: r["expires_at"] for r in others}
    action = AuditAction.API_KEY_ROTATED if others else AuditAction.API_KEY_ISSUED
    await record(conn, None, action, f"app:{app_id}", details)


async def keys_revoked(conn: Any, app_id: str, key_ids: Sequence[str], *, retired: bool) -> None:
    """API keys revoked (one, all, or all because the application was retired)."""
    if key_ids:
        details = {"key_ids": list(key_ids), "application_retired": retired}
        await record(conn, None, AuditAction.API_KEY_REVOKED, f"app:{app_id}", details)


async def webhook_secret_issued(conn: Any, subscriber: str, secret_id: str) -> None:
    """A new signing secret; a rotation when the subscriber still has other valid ones."""
    others = await conn.fetch(
        "SELECT id, expires_at FROM lintas.dir_webhook_secrets WHERE subscriber = $1 "
        "AND id <> $2 AND (expires_at IS NULL OR expires_at > now()) ORDER BY id",
        subscriber,
        secret_id,
    )
    details: dict[str, Any] = {"secret_id": secret_id}
    if others:
        details["previous_secrets"] = {r["id"]: r["expires_at"] for r in others}
    action = AuditAction.WEBHOOK_SECRET_ROTATED if others else AuditAction.WEBHOOK_SECRET_ISSUED
    await record(conn, None, action, f"subscriber:{subscriber}", details)

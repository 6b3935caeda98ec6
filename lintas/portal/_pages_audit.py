"""The audit log for operators: who did what, newest first, with pgaudit's records.

Before listing, the page imports what the database logged since the last import (the
portal also does it in the background, :func:`lintas.audit.pgaudit.import_pgaudit`), so
an analyst's query shows up as soon as an operator looks. Values in the details are
masked like the dead-letter pages' messages (NIKs, phone numbers, e-mail addresses): the
page says who looked at what, the full text stays in ``lintas.audit_log`` for the one
who investigates.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import asyncpg
from starlette.responses import Response
from starlette.routing import Route

from lintas.audit import AuditAction, AuditError, list_entries

from ._web import Page, page, render
from .i18n import MISSING, Translator
from .masking import mask_text

__all__ = ["ACTION_GROUPS", "action_labels", "names", "routes"]

log = logging.getLogger("lintas.portal")

PAGE_SIZE = 100

ACTION_GROUPS: Mapping[str, tuple[str, ...]] = {
    "credentials": ("api_key.", "webhook_secret.", "kafka_credential.", "acl."),
    "data_access": ("analyst.", "db."),
    "sign_in": ("portal.",),
    "operations": ("dlq.", "schema.", "retention."),
}
"""The filter's groups: their action prefixes."""


def _details(details: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for key, value in sorted(details.items()):
        text = value if isinstance(value, str) else _plain(value)
        rows.append((key, mask_text(text)))
    return rows


def _plain(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_plain(v)}" for k, v in value.items())
    return MISSING if value is None else str(value)


async def _import(p: Page) -> str | None:
    """Bring in pgaudit's new records; an explanation when they cannot be read here."""
    from lintas.audit import import_pgaudit

    if p.state.pgaudit_dir is None or not p.state.pgaudit_dir.is_dir():
        return p.t("audit.pgaudit_unavailable")
    try:
        async with p.state.pool.acquire() as conn:
            await import_pgaudit(conn, p.state.pgaudit_dir)
    except (AuditError, OSError, asyncpg.PostgresError) as exc:
        log.warning("pgaudit import failed: %s", exc)
        return p.t("audit.pgaudit_failed")
    return None


@page(operator="read the audit log")
async def audit_list(p: Page) -> Response:
    params = p.request.query_params
    group = params.get("group", "")
    source = params.get("source") or None
    actor = (params.get("actor") or "").strip() or None
    before = params.get("before", "")
    note = await _import(p)
    entries = await list_entries(
        p.state.pool,
        actions=ACTION_GROUPS.get(group, ()),
        actor=actor,
        source=source if source in ("platform", "pgaudit") else None,
        before_id=int(before) if before.isdigit() else None,
        limit=PAGE_SIZE,
    )
    return render(
        p.request, "audit_list.html", t=p.t, user=p.user, nav="audit", entries=entries,
        details=_details, labels=action_labels(p.t), names=names(p.t), groups=list(ACTION_GROUPS),
        group=group, source=source or "", actor=actor or "", note=note, page_size=PAGE_SIZE,
    )  # fmt: skip


def action_labels(t: Translator) -> dict[str, str]:
    """Every action's name in ``t``'s language."""
    return {a.value: t(f"audit.action.{a.value}") for a in AuditAction}


def names(t: Translator) -> dict[str, str]:
    """The filter groups' and the sources' names in ``t``'s language."""
    keys = [*(f"group.{g}" for g in ACTION_GROUPS), "source.platform", "source.pgaudit"]
    return {k.partition(".")[2]: t(f"audit.{k}") for k in keys}


routes = [Route("/audit", audit_list, methods=["GET"])]

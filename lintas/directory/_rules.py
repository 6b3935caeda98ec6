"""Rules that need more than the entry itself: the catalog and the rest of the directory."""

from __future__ import annotations

from lintas.schemas import Catalog

from .exceptions import Problem
from .models import Application, Subscription
from .routing import KODE_WILAYAH, field_names, matched_event_types

__all__ = ["application_problems", "subscription_problems"]


def application_problems(app: Application, catalog: Catalog) -> list[Problem]:
    """An application may produce only existing event types of its own OPD."""
    problems = []
    for type_id in app.produces:
        if type_id not in catalog:
            problems.append(
                Problem("produces", "names an event type that is not in the catalog", type_id)
            )
        elif catalog.get(type_id).opd != app.opd:
            problems.append(
                Problem(
                    "produces",
                    f"an application of {app.opd} may produce only {app.opd}.* event types",
                    type_id,
                )
            )
    return problems


def subscription_problems(sub: Subscription, catalog: Catalog) -> list[Problem]:
    """Event types exist; named fields (delivered or filtered on) exist in a matched type."""
    problems = []
    matched = []
    for pattern in sub.event_types:
        found = matched_event_types([pattern], catalog)
        if not found:
            problems.append(Problem("event_types", "matches no event type of the catalog", pattern))
        matched.extend(found)
    if not matched:
        return problems
    available = {name for et in matched for name in field_names(et)}
    types = ", ".join(sorted({et.id for et in matched}))
    for name in sub.fields:
        if name != "*" and name not in available:
            problems.append(Problem("fields", f"is not a field of {types}", name))
    for name in sub.filter.equals:
        if name not in available:
            problems.append(Problem(f"filter.equals.{name}", f"is not a field of {types}", name))
    if sub.filter.kode_wilayah_prefix is not None and KODE_WILAYAH not in available:
        problems.append(
            Problem(
                "filter.kode_wilayah_prefix",
                f"needs a kode_wilayah field, which {types} do not have",
            )
        )
    return problems

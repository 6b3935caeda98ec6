"""Subscriptions: the list, one page each with what it delivers and why, add and edit.

The detail page previews the delivery on the catalog's (invented) example of each matched
event type, through :func:`lintas.directory.project`: the same function routing uses, so
the preview shows exactly the fields a subscriber would receive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from lintas.directory import (
    DirectoryError,
    NotFound,
    Problem,
    Subscription,
    SubscriptionStatus,
    matched_event_types,
    matches,
    project,
)
from lintas.directory.routing import field_names
from lintas.schemas import EventType, example_event

from ._web import Page, page, problems_of, render
from .auth import checked_form
from .catalog import pretty_json

__all__ = ["Delivery", "routes"]

_SPLIT = re.compile(r"[\s,]+")


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """What one matched event type delivers to the subscriber."""

    event_type: EventType
    delivered: list[tuple[str, str | None]]
    """Delivered top-level fields with their personal-data kind, if any."""
    dropped: list[str]
    example_matches: bool
    preview: str


def deliveries(sub: Subscription, types: list[EventType]) -> list[Delivery]:
    result = []
    for et in types:
        names = field_names(et)
        kept = names if sub.fields == ("*",) else tuple(n for n in sub.fields if n in names)
        example = example_event(et)
        result.append(
            Delivery(
                event_type=et,
                delivered=[(n, et.pii_fields.get(n)) for n in kept],
                dropped=[n for n in names if n not in kept],
                example_matches=matches(
                    sub.model_copy(update={"status": SubscriptionStatus.ACTIVE}), et.id, example
                ),
                preview=pretty_json(project(sub, example)),
            )
        )
    return result


@page()
async def sub_list(p: Page) -> Response:
    subs = await p.directory.list_subscriptions()
    subscribers = {s.name: s for s in await p.directory.list_subscribers()}
    return render(
        p.request, "subs_list.html", t=p.t, user=p.user, nav="subs", subs=subs,
        subscribers=subscribers,
    )  # fmt: skip


@page()
async def sub_detail(p: Page) -> Response:
    try:
        sub = await p.directory.get_subscription(p.request.path_params["name"])
    except NotFound:
        return render(p.request, "error.html", t=p.t, user=p.user, status=404, code=404)
    subscriber = await p.directory.get_subscriber(sub.subscriber)
    types = matched_event_types(sub.event_types, p.directory.catalog)
    return render(
        p.request, "sub_detail.html", t=p.t, user=p.user, nav="subs", sub=sub,
        subscriber=subscriber, deliveries=deliveries(sub, types),
    )  # fmt: skip


def _values(form: FormData) -> dict[str, Any]:
    def items(name: str) -> list[str]:
        return [v for v in _SPLIT.split(str(form.get(name, ""))) if v]

    equals: dict[str, str] = {}
    for line in str(form.get("equals", "")).splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            equals[key.strip()] = value.strip()
    prefix = str(form.get("kode_wilayah_prefix", "")).strip() or None
    return {
        "name": str(form.get("name", "")).strip(),
        "subscriber": str(form.get("subscriber", "")),
        "event_types": items("event_types"),
        "fields": items("fields"),
        "filter": {"equals": equals, "kode_wilayah_prefix": prefix},
        "purpose": str(form.get("purpose", "")).strip(),
        "status": str(form.get("status", SubscriptionStatus.ACTIVE.value)),
    }


def _form_values(sub: Subscription) -> dict[str, Any]:
    return {
        **sub.model_dump(mode="json"),
        "event_types": list(sub.event_types),
        "fields": list(sub.fields),
    }


async def _form(
    p: Page,
    *,
    values: dict[str, Any],
    editing: str | None,
    problems: list[Problem] | None = None,
) -> Response:
    return render(
        p.request,
        "sub_form.html",
        t=p.t,
        user=p.user,
        nav="subs",
        values=values,
        editing=editing,
        subscribers=await p.directory.list_subscribers(),
        event_types=list(p.directory.catalog),
        statuses=list(SubscriptionStatus),
        problems=problems or [],
        status=422 if problems else 200,
    )


_EMPTY: dict[str, Any] = {
    "name": "",
    "subscriber": "",
    "event_types": [],
    "fields": [],
    "filter": {"equals": {}, "kode_wilayah_prefix": None},
    "purpose": "",
    "status": "active",
}


@page(operator="add subscriptions")
async def sub_new(p: Page) -> Response:
    return await _form(p, values=_EMPTY, editing=None)


@page(operator="add subscriptions")
async def sub_create(p: Page) -> Response:
    values = _values(await checked_form(p.request))
    try:
        sub = await p.directory.add_subscription(values)
    except DirectoryError as exc:
        return await _form(p, values=values, editing=None, problems=problems_of(exc))
    return RedirectResponse(f"/subscriptions/{sub.name}", status_code=303)


@page(operator="edit subscriptions")
async def sub_edit(p: Page) -> Response:
    name = p.request.path_params["name"]
    try:
        sub = await p.directory.get_subscription(name)
    except NotFound:
        return render(p.request, "error.html", t=p.t, user=p.user, status=404, code=404)
    return await _form(p, values=_form_values(sub), editing=name)


@page(operator="edit subscriptions")
async def sub_update(p: Page) -> Response:
    name = p.request.path_params["name"]
    values = _values(await checked_form(p.request))
    values["name"] = name
    changes = {k: v for k, v in values.items() if k not in ("name", "subscriber")}
    try:
        await p.directory.update_subscription(name, **changes)
    except DirectoryError as exc:
        return await _form(p, values=values, editing=name, problems=problems_of(exc))
    return RedirectResponse(f"/subscriptions/{name}", status_code=303)


routes = [
    Route("/subscriptions", sub_list, methods=["GET"]),
    Route("/subscriptions", sub_create, methods=["POST"]),
    Route("/subscriptions/new", sub_new, methods=["GET"]),
    Route("/subscriptions/{name}", sub_detail, methods=["GET"]),
    Route("/subscriptions/{name}", sub_update, methods=["POST"]),
    Route("/subscriptions/{name}/edit", sub_edit, methods=["GET"]),
]

"""Applications: the list with computed status, one page each, onboarding and API keys.

Every change goes through :class:`lintas.directory.Directory`; a new key's token is shown
on the response page once and never again (the directory stores only its hash).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from lintas.directory import (
    AppStatus,
    ConfirmationRequired,
    DirectoryError,
    IntegrationMethod,
    IssuedKey,
    NotFound,
    Problem,
)

from ._web import Page, page, problems_of, render
from .auth import checked_form

__all__ = ["routes"]

# Rotation overlaps offered on the form, in days; "keep" leaves old keys valid until revoked.
OVERLAPS = ("7", "1", "0", "keep")
STAGES = (AppStatus.PLANNED, AppStatus.TESTING, AppStatus.RETIRED)


def _optional(form: FormData, name: str) -> str | None:
    value = str(form.get(name, "")).strip()
    return value or None


@page()
async def app_list(p: Page) -> Response:
    apps = await p.directory.list_applications()
    report = {s.app_id: s for s in await p.directory.integration_report()}
    opds = {o.code: o.name for o in await p.directory.list_opds()}
    last = {
        s.app_id: max(t for t in (s.last_produced_at, s.last_received_at) if t)
        for s in report.values()
        if s.last_produced_at or s.last_received_at
    }
    return render(
        p.request, "apps_list.html", t=p.t, user=p.user, nav="apps", apps=apps, report=report,
        opds=opds, last=last, integrated=sum(s.integrated for s in report.values()),
        window_days=p.state.settings.directory.integrated_window_days,
    )  # fmt: skip


async def _form_page(
    p: Page, *, values: dict[str, Any] | None = None, problems: list[Problem] | None = None
) -> Response:
    return render(
        p.request,
        "app_form.html",
        t=p.t,
        user=p.user,
        nav="apps",
        opds=await p.directory.list_opds(),
        event_types=list(p.directory.catalog),
        methods=list(IntegrationMethod),
        stages=(AppStatus.PLANNED, AppStatus.TESTING),
        values=values or {"produces": []},
        problems=problems or [],
        status=422 if problems else 200,
    )


@page(operator="add applications")
async def app_new(p: Page) -> Response:
    return await _form_page(p)


@page(operator="add applications")
async def app_create(p: Page) -> Response:
    form = await checked_form(p.request)
    values: dict[str, Any] = {
        "id": str(form.get("id", "")).strip(),
        "name": str(form.get("name", "")).strip(),
        "opd": str(form.get("opd", "")),
        "method": str(form.get("method", "")),
        "status": str(form.get("status", AppStatus.PLANNED.value)),
        "pse_number": _optional(form, "pse_number"),
        "platform": _optional(form, "platform"),
        "owner_contact": _optional(form, "owner_contact"),
        "produces": [str(v) for v in form.getlist("produces")],
    }
    try:
        app, key = await p.directory.add_application(values)
    except DirectoryError as exc:
        return await _form_page(p, values=values, problems=problems_of(exc))
    assert key is not None  # add_application issues the first key by default
    return _key_page(p, app.id, key, created=True)


def _key_page(p: Page, app_id: str, key: IssuedKey, *, created: bool = False) -> Response:
    return render(
        p.request, "key_issued.html", t=p.t, user=p.user, nav="apps", app_id=app_id, key=key,
        created=created, gateway_url=p.state.gateway_url, no_store=True,
    )  # fmt: skip


async def _detail(
    p: Page, app_id: str, *, confirm: str | None = None, problems: list[Problem] | None = None
) -> Response:
    try:
        app = await p.directory.get_application(app_id)
    except NotFound:
        return render(p.request, "error.html", t=p.t, user=p.user, status=404, code=404)
    report = {s.app_id: s for s in await p.directory.integration_report()}
    opd = await p.directory.get_opd(app.opd)
    return render(
        p.request,
        "app_detail.html",
        t=p.t,
        user=p.user,
        nav="apps",
        app=app,
        opd=opd,
        integration=report.get(app.id),
        keys=await p.directory.list_keys(app.id),
        now=dt.datetime.now(dt.UTC),
        overlaps=OVERLAPS,
        stages=STAGES,
        window_days=p.state.settings.directory.integrated_window_days,
        confirm=confirm,
        problems=problems or [],
        status=409 if confirm else (422 if problems else 200),
    )


@page()
async def app_detail(p: Page) -> Response:
    return await _detail(p, p.request.path_params["app_id"])


@page(operator="issue API keys")
async def key_issue(p: Page) -> Response:
    form = await checked_form(p.request)
    app_id = p.request.path_params["app_id"]
    choice = str(form.get("overlap", "7"))
    overlap = (
        None if choice == "keep" else dt.timedelta(days=int(choice) if choice in OVERLAPS else 7)
    )
    try:
        key = await p.directory.issue_key(app_id, overlap=overlap)
    except DirectoryError as exc:
        return await _detail(p, app_id, problems=problems_of(exc))
    return _key_page(p, app_id, key)


@page(operator="revoke API keys")
async def key_revoke(p: Page) -> Response:
    form = await checked_form(p.request)
    app_id = p.request.path_params["app_id"]
    key_id = p.request.path_params["key_id"]
    try:
        await p.directory.revoke_keys(app_id, key_id, force=form.get("force") == "1")
    except ConfirmationRequired as exc:
        return await _detail(p, app_id, confirm=key_id, problems=[Problem("key", exc.message)])
    except DirectoryError as exc:
        return await _detail(p, app_id, problems=problems_of(exc))
    return RedirectResponse(f"/apps/{app_id}", status_code=303)


@page(operator="change an application's stage")
async def app_stage(p: Page) -> Response:
    form = await checked_form(p.request)
    app_id = p.request.path_params["app_id"]
    stage = str(form.get("status", ""))
    try:
        if stage == AppStatus.RETIRED.value:
            await p.directory.retire_application(app_id)
        else:
            await p.directory.update_application(app_id, status=stage)
    except DirectoryError as exc:
        return await _detail(p, app_id, problems=problems_of(exc))
    return RedirectResponse(f"/apps/{app_id}", status_code=303)


routes = [
    Route("/apps", app_list, methods=["GET"]),
    Route("/apps", app_create, methods=["POST"]),
    Route("/apps/new", app_new, methods=["GET"]),
    Route("/apps/{app_id}", app_detail, methods=["GET"]),
    Route("/apps/{app_id}/keys", key_issue, methods=["POST"]),
    Route("/apps/{app_id}/keys/{key_id}/revoke", key_revoke, methods=["POST"]),
    Route("/apps/{app_id}/stage", app_stage, methods=["POST"]),
]

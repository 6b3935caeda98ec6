"""The dashboard page and the JSON it refreshes from."""

from __future__ import annotations

from typing import Any

import orjson
from markupsafe import Markup
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._web import Page, page, render

__all__ = ["routes", "script_json"]


def script_json(value: Any) -> Markup:
    """JSON safe inside ``<script type="application/json">``: ``<`` cannot close the tag."""
    text = orjson.dumps(value).decode().replace("<", "\\u003c").replace(">", "\\u003e")
    return Markup(text)


@page()
async def dashboard(p: Page) -> Response:
    snapshot = await p.state.dashboard.snapshot()
    boot = {
        "snapshot": snapshot,
        "messages": p.t.for_script(),
        "lang": p.t.lang,
        "zone": p.state.settings.timezone,
        "refresh_ms": int(p.state.settings.portal.refresh_s * 1000),
        "endpoint": "/api/dashboard",
    }
    return render(
        p.request, "dashboard.html", t=p.t, user=p.user, nav="dashboard", boot=script_json(boot)
    )


@page(api=True)
async def dashboard_json(p: Page) -> Response:
    response = JSONResponse(await p.state.dashboard.snapshot())
    response.headers["Cache-Control"] = "no-store"
    return response


routes = [
    Route("/", dashboard, methods=["GET"]),
    Route("/api/dashboard", dashboard_json, methods=["GET"]),
]

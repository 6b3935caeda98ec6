"""The event catalog: the list, one page per event type, and the AsyncAPI document."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Route

from lintas.directory.routing import matches_type
from lintas.schemas import EventType, UnknownEventType
from lintas.schemas.registry import RegistryError, SchemaRegistryClient, SubjectNotFound

from ._web import Page, page, render
from .asyncapi import asyncapi_json
from .catalog import curl_snippet, example_json, field_rows, sdk_snippet

__all__ = ["RegistryInfo", "routes"]

_REGISTRY_TIMEOUT_S = 3.0


@dataclass(kw_only=True)
class RegistryInfo:
    """What the schema registry says about one subject."""

    reachable: bool
    versions: list[int] = field(default_factory=list)
    latest_id: int | None = None
    compatibility: str | None = None
    error: str | None = None


async def registry_info(url: str | None, subject: str) -> RegistryInfo:
    if url is None:
        return RegistryInfo(reachable=False, error="no registry configured")
    try:
        async with SchemaRegistryClient(url, timeout=_REGISTRY_TIMEOUT_S) as client:
            level = await client.get_compatibility(subject, default_to_global=True)
            try:
                versions = await client.get_versions(subject)
            except SubjectNotFound:
                return RegistryInfo(reachable=True, compatibility=level)
            latest = await client.get_latest_version(subject)
    except RegistryError as exc:
        return RegistryInfo(reachable=False, error=exc.message)
    return RegistryInfo(
        reachable=True, versions=versions, latest_id=latest.schema_id, compatibility=level
    )


def _event_type(p: Page) -> EventType:
    try:
        return p.directory.catalog.get(p.request.path_params["event_type"])
    except UnknownEventType:
        raise HTTPException(404) from None


@page()
async def catalog_list(p: Page) -> Response:
    types = list(p.directory.catalog)
    apps = await p.directory.list_applications()
    producers = {et.id: [a.id for a in apps if et.id in a.produces] for et in types}
    return render(
        p.request, "catalog_list.html", t=p.t, user=p.user, nav="catalog", types=types,
        producers=producers,
    )  # fmt: skip


@page()
async def catalog_detail(p: Page) -> Response:
    et = _event_type(p)
    apps = [a for a in await p.directory.list_applications() if et.id in a.produces]
    subscriptions = [s for s in await p.directory.list_subscriptions() if matches_type(s, et.id)]
    return render(
        p.request,
        "catalog_detail.html",
        t=p.t,
        user=p.user,
        nav="catalog",
        et=et,
        fields=field_rows(et),
        registry=await registry_info(p.state.registry_url, et.subject),
        apps=apps,
        subscriptions=subscriptions,
        example=example_json(et),
        sdk=sdk_snippet(et),
        curl=curl_snippet(et, p.state.gateway_url),
    )


@page()
async def asyncapi(p: Page) -> Response:
    body = asyncapi_json(
        p.directory.catalog,
        kafka_bootstrap=p.state.kafka.bootstrap if p.state.kafka else None,
        partitions=p.state.settings.kafka.partitions,
    )
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": 'inline; filename="lintas-asyncapi.json"'},
    )


routes = [
    Route("/catalog", catalog_list, methods=["GET"]),
    Route("/catalog/asyncapi.json", asyncapi, methods=["GET"]),
    Route("/catalog/{event_type}", catalog_detail, methods=["GET"]),
]

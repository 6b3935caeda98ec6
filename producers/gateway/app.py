"""The gateway as an ASGI application (Starlette): routes, request handling, probes.

Routes::

    POST /v1/events/{event_type}   one event (its data as JSON, or a structured CloudEvent)
    POST /v1/events                one structured CloudEvent of any type
    POST /v1/events:batch          up to max_batch_events (JSON array, NDJSON, CE batch)
    GET  /healthz                  the process answers
    GET  /readyz                   keys can be verified and events taken (503 if not)
    GET  /metrics                  Prometheus text format
    GET  /openapi.json             the OpenAPI 3.1 document

Every event route runs the same steps (:meth:`_EventRoutes.handle`): authenticate against
the live directory, read the body within the size and time limits, parse it, then hand it
to the :class:`~.ingest.Ingestor`. Every error becomes a problem-details answer
(:mod:`.errors`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from lintas.schemas import UnknownEventType

from .._producer import ProducerState
from .auth import authenticate
from .errors import json_response, problem, problem_for
from .exceptions import BatchTooLarge, MalformedRequest, UnknownEventTypeName
from .formats import RawEvent, body_kind, parse_batch, parse_cloudevent_body, parse_single
from .idempotency import check_key, fingerprint
from .ingest import request_key
from .limits import read_body
from .openapi import build_openapi
from .runtime import Gateway

__all__ = ["create_app"]

_TRUE, _FALSE = frozenset({"true", "1"}), frozenset({"false", "0", ""})


class _EventRoutes:
    """The handlers of the event routes, bound to one :class:`Gateway`."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.config = gateway.config

    async def one(self, request: Request) -> Response:
        name = request.path_params["event_type"]

        def parse(body: bytes) -> list[RawEvent]:
            return [parse_single(request.headers.get("content-type"), body, name)]

        return await self.handle(request, "event", parse, single=True, event_type=name)

    async def cloudevent(self, request: Request) -> Response:
        def parse(body: bytes) -> list[RawEvent]:
            return [parse_cloudevent_body(request.headers.get("content-type"), body)]

        return await self.handle(request, "cloudevent", parse, single=True)

    async def batch(self, request: Request) -> Response:
        def parse(body: bytes) -> list[RawEvent]:
            _, raws = parse_batch(request.headers.get("content-type"), body)
            if len(raws) > self.config.max_batch_events:
                raise BatchTooLarge(len(raws), self.config.max_batch_events)
            return raws

        return await self.handle(request, "batch", parse, single=False)

    async def handle(
        self,
        request: Request,
        route: str,
        parse: Callable[[bytes], list[RawEvent]],
        *,
        single: bool,
        event_type: str | None = None,
    ) -> Response:
        gateway = self.gateway
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self.config.request_timeout_s
        try:
            caller = authenticate(request.headers.get("authorization"), gateway)
            gateway.usage.used(caller.key_id)
            if event_type is not None:
                self._known(event_type)
            partial = _flag(request.query_params.get("partial"))
            header_key = request.headers.get("idempotency-key")
            if header_key is not None:
                header_key = check_key(header_key)
            body = await read_body(
                request,
                limit=self.config.max_body_bytes,
                timeout=max(deadline - loop.time(), 0.001),
            )
            raws = parse(body)
            key = request_key(header_key, body_kind(raws), raws)
            print_ = fingerprint(request.method, request.url.path, str(partial), body)
            answer = await gateway.ingestor.ingest(
                caller,
                raws,
                single=single,
                partial=partial and not single,
                key=key,
                print_=print_,
                deadline=deadline,
            )
            headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
            response = Response(
                answer.body,
                status_code=answer.status_code,
                headers=headers,
                media_type="application/json",
            )
        except Exception as exc:
            response = problem_for(exc, single=single, retry_after=self.config.retry_after_s)
        metrics = gateway.metrics
        metrics.requests.labels(route, str(response.status_code)).inc()
        metrics.latency.labels(route).observe(loop.time() - started)
        return response

    def _known(self, name: str) -> None:
        catalog = self.gateway.catalog
        try:
            found = catalog.get(name)
        except UnknownEventType as exc:
            raise UnknownEventTypeName(name, exc.suggestions) from None
        if found.id != name:
            raise UnknownEventTypeName(name, [found.id])


def _flag(value: str | None) -> bool:
    lowered = (value or "").strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise MalformedRequest("partial", "must be true or false")


def create_app(gateway: Gateway) -> Starlette:
    """The gateway's ASGI application; its lifespan starts and stops ``gateway``.

    Args:
        gateway: the process's long-lived parts (not yet started).
    """
    routes_ = _EventRoutes(gateway)
    openapi = orjson.dumps(build_openapi(gateway.catalog, gateway.config))

    async def healthz(request: Request) -> Response:
        return json_response(200, {"status": "ok"})

    async def readyz(request: Request) -> Response:
        producer = gateway.producer
        store = gateway.store
        started = producer.state is ProducerState.STARTED
        body: dict[str, Any] = {
            "ready": gateway.ready and started,
            "directory": "ready" if gateway.ready else "starting",
            "kafka": ("spooling" if producer.spooling else "connected") if started else "stopped",
            "spooled": producer.spooled if started else None,
            "idempotency_store": "disabled",
        }
        if store is not None:
            body["idempotency_store"] = "ok" if await store.ping() else "unavailable"
        return json_response(200 if body["ready"] else 503, body)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(gateway.metrics_registry), media_type=CONTENT_TYPE_LATEST)

    async def openapi_json(request: Request) -> Response:
        return Response(openapi, media_type="application/json")

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return problem(exc.status_code, code, str(exc.detail), headers=dict(exc.headers or {}))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    return Starlette(
        routes=[
            Route("/v1/events:batch", routes_.batch, methods=["POST"]),
            Route("/v1/events", routes_.cloudevent, methods=["POST"]),
            Route("/v1/events/{event_type}", routes_.one, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/openapi.json", openapi_json, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )

"""The Confluent Schema Registry REST API over a :class:`Registry` (Starlette routes).

Every handler goes through :func:`_endpoint`, which turns any exception into Confluent's
error body via :func:`~lintas.schemas.registry._errors.error_body`; a bad request never
takes the server down. Request bodies are read with a 1 MiB limit (413 beyond it).
Responses are ``application/vnd.schemaregistry.v1+json`` unless the client only accepts
``application/json``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from lintas.audit import acting_as
from lintas.schemas.exceptions import InvalidSchema

from ._errors import ApiError, error_body
from ._registry import Registry, parse_version
from ._schema import SCHEMA_TYPES, SubjectVersion
from .exceptions import InvalidCompatibilityLevel, InvalidMode, SchemaNotFound

__all__ = ["MAX_BODY_BYTES", "build_routes", "create_api"]

MAX_BODY_BYTES = 1024 * 1024
"""Largest request body accepted (1 MiB): far above any real Avro schema."""
# Past this, stop reading a too-large body and answer anyway; reading the rest first lets
# an ordinary client see the 413 instead of a reset connection.
_DRAIN_LIMIT = 16 * MAX_BODY_BYTES

V1_JSON = "application/vnd.schemaregistry.v1+json"

Handler = Callable[[Request, Registry], Awaitable[Any]]


class _Raw:
    """A handler result sent as is (the ``/schema`` endpoints return the schema text)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _media_type(request: Request) -> str:
    accept = request.headers.get("accept", "")
    if "application/json" in accept and "schemaregistry" not in accept and "*/*" not in accept:
        return "application/json"
    return V1_JSON


def _respond(request: Request, status: int, payload: Any) -> Response:
    body = payload.text.encode() if isinstance(payload, _Raw) else orjson.dumps(payload)
    return Response(body, status_code=status, media_type=_media_type(request))


def _client(request: Request) -> str:
    """Who calls, for the audit log: ``registry:<basic-auth user or anonymous>@<address>``.

    Only the user name of a Basic credential is read, never its password.
    """
    user = "anonymous"
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        with contextlib.suppress(ValueError, binascii.Error):
            user = base64.b64decode(encoded, validate=True).decode().partition(":")[0] or user
    host = request.client.host if request.client else "?"
    return f"registry:{user}@{host}"


def _endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    @functools.wraps(handler)
    async def run(request: Request) -> Response:
        registry: Registry = request.app.state.registry
        try:
            with acting_as(_client(request)):
                return _respond(request, 200, await handler(request, registry))
        except Exception as exc:  # every failure becomes a Confluent error body
            status, body = error_body(exc)
            return _respond(request, status, body)

    return run


async def _body(request: Request) -> dict[str, Any]:
    """The JSON object in the body, read within :data:`MAX_BODY_BYTES`."""
    declared = request.headers.get("content-length", "")
    too_large = declared.isdigit() and int(declared) > MAX_BODY_BYTES
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            too_large = True
        if too_large:
            if size > _DRAIN_LIMIT:
                break
            continue
        chunks.append(chunk)
    if too_large:
        raise ApiError(413, 413, f"Request body is larger than {MAX_BODY_BYTES} bytes (1 MiB)")
    raw = b"".join(chunks)
    try:
        doc = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, 400, f"Malformed JSON in the request body: {exc}") from exc
    if not isinstance(doc, dict):
        raise ApiError(422, 422, "The request body must be a JSON object")
    return doc


def _flag(request: Request, name: str) -> bool:
    # Confluent clients send Python's True/False as well as true/false.
    return request.query_params.get(name, "false").lower() == "true"


def _schema_fields(doc: dict[str, Any]) -> tuple[str, str | None]:
    schema = doc.get("schema")
    if not isinstance(schema, str) or not schema.strip():
        raise InvalidSchema('the request has no "schema" string (the schema\'s JSON text)')
    if doc.get("references"):
        raise InvalidSchema("schema references are not supported by this registry")
    schema_type = doc.get("schemaType")
    if schema_type is not None and not isinstance(schema_type, str):
        raise InvalidSchema('"schemaType" must be a string')
    return schema, schema_type


def _schema_id(request: Request) -> int:
    raw = request.path_params["schema_id"]
    # Ids are PostgreSQL integers: anything beyond int32 cannot exist (and would overflow
    # the query's parameter), so it is simply not found.
    if not raw.isdigit() or int(raw) > 2**31 - 1:
        raise SchemaNotFound(schema_id=None)
    return int(raw)


def _version_doc(v: SubjectVersion) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "subject": v.subject,
        "version": v.version,
        "id": v.schema_id,
        "schema": v.text,
    }
    if v.schema_type != "AVRO":  # Confluent leaves AVRO implicit
        doc["schemaType"] = v.schema_type
    return doc


# -- subjects --------------------------------------------------------------------------


async def list_subjects(request: Request, registry: Registry) -> Any:
    return await registry.subjects(deleted=_flag(request, "deleted"))


async def list_versions(request: Request, registry: Registry) -> Any:
    return await registry.versions(
        request.path_params["subject"], deleted=_flag(request, "deleted")
    )


async def register(request: Request, registry: Registry) -> Any:
    doc = await _body(request)
    schema, schema_type = _schema_fields(doc)
    schema_id, version = doc.get("id"), doc.get("version")
    # Confluent sends -1 / 0 for "not given" in some clients.
    schema_id = schema_id if isinstance(schema_id, int) and schema_id > 0 else None
    version = version if isinstance(version, int) and version > 0 else None
    registered = await registry.register(
        request.path_params["subject"],
        schema,
        schema_type=schema_type,
        schema_id=schema_id,
        version=version,
    )
    return _version_doc(registered)


async def get_version(request: Request, registry: Registry) -> Any:
    found = await registry.version(
        request.path_params["subject"],
        parse_version(request.path_params["version"]),
        deleted=_flag(request, "deleted"),
    )
    return _version_doc(found)


async def get_version_schema(request: Request, registry: Registry) -> Any:
    found = await registry.version(
        request.path_params["subject"],
        parse_version(request.path_params["version"]),
        deleted=_flag(request, "deleted"),
    )
    return _Raw(found.text)


async def lookup(request: Request, registry: Registry) -> Any:
    doc = await _body(request)
    schema, schema_type = _schema_fields(doc)
    found = await registry.lookup(
        request.path_params["subject"],
        schema,
        schema_type=schema_type,
        deleted=_flag(request, "deleted"),
    )
    return _version_doc(found)


async def delete_subject(request: Request, registry: Registry) -> Any:
    return await registry.delete_subject(
        request.path_params["subject"], permanent=_flag(request, "permanent")
    )


async def delete_version(request: Request, registry: Registry) -> Any:
    return await registry.delete_version(
        request.path_params["subject"],
        parse_version(request.path_params["version"]),
        permanent=_flag(request, "permanent"),
    )


# -- schemas by id ---------------------------------------------------------------------


async def get_schema(request: Request, registry: Registry) -> Any:
    stored = await registry.schema(_schema_id(request))
    doc: dict[str, Any] = {"schema": stored.text}
    if stored.schema_type != "AVRO":
        doc["schemaType"] = stored.schema_type
    return doc


async def get_schema_text(request: Request, registry: Registry) -> Any:
    return _Raw((await registry.schema(_schema_id(request))).text)


async def schema_versions(request: Request, registry: Registry) -> Any:
    found = await registry.usages(_schema_id(request), deleted=_flag(request, "deleted"))
    return [{"subject": v.subject, "version": v.version} for v in found]


async def schema_subjects(request: Request, registry: Registry) -> Any:
    found = await registry.usages(_schema_id(request), deleted=_flag(request, "deleted"))
    return sorted({v.subject for v in found})


async def schema_types(request: Request, registry: Registry) -> Any:
    return list(SCHEMA_TYPES)


# -- config and mode -------------------------------------------------------------------


def _subject(request: Request) -> str | None:
    subject = request.path_params.get("subject")
    return str(subject) if subject is not None else None


async def get_config(request: Request, registry: Registry) -> Any:
    level = await registry.compatibility(
        _subject(request), default_to_global=_flag(request, "defaultToGlobal")
    )
    return {"compatibilityLevel": level.value}


async def put_config(request: Request, registry: Registry) -> Any:
    doc = await _body(request)
    if "compatibility" not in doc:
        raise InvalidCompatibilityLevel(None)
    level = await registry.set_compatibility(doc["compatibility"], _subject(request))
    return {"compatibility": level.value}


async def delete_config(request: Request, registry: Registry) -> Any:
    level = await registry.delete_compatibility(_subject(request))
    return {"compatibilityLevel": level.value}


async def get_mode(request: Request, registry: Registry) -> Any:
    mode = await registry.mode(
        _subject(request), default_to_global=_flag(request, "defaultToGlobal")
    )
    return {"mode": mode}


async def put_mode(request: Request, registry: Registry) -> Any:
    doc = await _body(request)
    if "mode" not in doc:
        raise InvalidMode(None)
    mode = await registry.set_mode(doc["mode"], _subject(request), force=_flag(request, "force"))
    return {"mode": mode}


async def delete_mode(request: Request, registry: Registry) -> Any:
    subject = _subject(request)
    assert subject is not None  # routed only with a subject
    return {"mode": await registry.delete_mode(subject)}


# -- compatibility ---------------------------------------------------------------------


async def check_compatibility(request: Request, registry: Registry) -> Any:
    doc = await _body(request)
    schema, schema_type = _schema_fields(doc)
    raw_version = request.path_params.get("version")
    ref = parse_version(raw_version) if raw_version is not None else None
    result = await registry.check(
        request.path_params["subject"], schema, ref, schema_type=schema_type
    )
    answer: dict[str, Any] = {"is_compatible": result.is_compatible}
    if _flag(request, "verbose"):
        answer["messages"] = result.messages
    return answer


# -- service ---------------------------------------------------------------------------


async def root(request: Request, registry: Registry) -> Any:
    return {}


async def healthz(request: Request) -> Response:
    registry: Registry = request.app.state.registry
    ok = await registry.healthy()
    return Response(
        orjson.dumps({"status": "ok" if ok else "database unavailable"}),
        status_code=200 if ok else 503,
        media_type="application/json",
    )


def build_routes() -> list[Route]:
    """The registry's routes, Confluent's paths."""
    e = _endpoint
    subject_version = "/subjects/{subject}/versions/{version}"
    return [
        Route("/", e(root), methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/subjects", e(list_subjects), methods=["GET"]),
        Route("/subjects/{subject}/versions", e(list_versions), methods=["GET"]),
        Route("/subjects/{subject}/versions", e(register), methods=["POST"]),
        Route(subject_version, e(get_version), methods=["GET"]),
        Route(subject_version, e(delete_version), methods=["DELETE"]),
        Route(subject_version + "/schema", e(get_version_schema), methods=["GET"]),
        Route("/subjects/{subject}", e(lookup), methods=["POST"]),
        Route("/subjects/{subject}", e(delete_subject), methods=["DELETE"]),
        Route("/schemas/types", e(schema_types), methods=["GET"]),
        Route("/schemas/ids/{schema_id}", e(get_schema), methods=["GET"]),
        Route("/schemas/ids/{schema_id}/schema", e(get_schema_text), methods=["GET"]),
        Route("/schemas/ids/{schema_id}/versions", e(schema_versions), methods=["GET"]),
        Route("/schemas/ids/{schema_id}/subjects", e(schema_subjects), methods=["GET"]),
        Route("/config", e(get_config), methods=["GET"]),
        Route("/config", e(put_config), methods=["PUT"]),
        Route("/config", e(delete_config), methods=["DELETE"]),
        Route("/config/{subject}", e(get_config), methods=["GET"]),
        Route("/config/{subject}", e(put_config), methods=["PUT"]),
        Route("/config/{subject}", e(delete_config), methods=["DELETE"]),
        Route("/mode", e(get_mode), methods=["GET"]),
        Route("/mode", e(put_mode), methods=["PUT"]),
        Route("/mode/{subject}", e(get_mode), methods=["GET"]),
        Route("/mode/{subject}", e(put_mode), methods=["PUT"]),
        Route("/mode/{subject}", e(delete_mode), methods=["DELETE"]),
        Route(
            "/compatibility/subjects/{subject}/versions/{version}",
            e(check_compatibility),
            methods=["POST"],
        ),
        Route(
            "/compatibility/subjects/{subject}/versions", e(check_compatibility), methods=["POST"]
        ),
    ]


async def _http_error(request: Request, exc: Exception) -> Response:
    # Unknown paths and methods still answer in Confluent's shape.
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "Internal Server Error"
    return _respond(request, status, {"error_code": status, "message": f"HTTP {status} {detail}"})


def create_api(registry: Registry, *, manage_lifecycle: bool = True) -> Starlette:
    """The Starlette application serving ``registry``.

    Args:
        registry: the registry to serve.
        manage_lifecycle: start and stop the registry with the application's lifespan.
    """

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if manage_lifecycle:
            await registry.start()
        try:
            yield
        finally:
            if manage_lifecycle:
                await registry.stop()

    app = Starlette(
        routes=build_routes(),
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.registry = registry
    return app

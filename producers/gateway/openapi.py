"""The gateway's OpenAPI 3.1 document, generated from the contract catalog.

Each event type gets its own operation, ``POST /v1/events/<event type id>``, whose request
schema is the type's pydantic model (derived from its ``.avsc``) and whose example is the
catalog's :func:`~lintas.schemas.example_event`; so a client generated from
``/openapi.json`` (openapi-generator for Java, PHP, C#) gets one typed method per event
type. The batch, the CloudEvents endpoint and the probes complete it.
"""

from __future__ import annotations

from typing import Any

from lintas.schemas import Catalog, EventType, example_event, model_for
from lintas.settings import GatewaySettings

from .formats import CE_BATCH, CE_SINGLE, JSON, NDJSON

__all__ = ["build_openapi", "example_json"]

_SCHEMAS = "#/components/schemas/"
PROBLEM_JSON = "application/problem+json"
_ERROR_CODES = {
    "400": "The request cannot be read (malformed_request).",
    "401": "No API key, or one the directory refuses (unauthenticated).",
    "403": "The application may not publish this event type (event_type_not_permitted).",
    "408": "The body did not arrive within the request timeout (request_timeout).",
    "409": "The first request with this Idempotency-Key is still running "
    "(idempotency_key_in_use); retry shortly.",
    "413": "The body is too large or holds too many events (payload_too_large).",
    "415": "A Content-Type this endpoint does not take (unsupported_media_type).",
    "422": "Events break their contracts (validation_failed, every problem listed), or the "
    "Idempotency-Key was used for another request (idempotency_key_reused).",
    "429": "Over the application's rate limit (rate_limited); see Retry-After.",
    "502": "Kafka refused an event for good (refused_by_broker).",
    "503": "The gateway cannot take events now: its spool is full, or the schema registry or "
    "the database is away (unavailable); see Retry-After. Nothing listed as not "
    "accepted was published.",
}


def example_json(event_type: EventType) -> dict[str, Any]:
    """The catalog's example of ``event_type`` as JSON (dates as ISO 8601 text)."""
    model = model_for(event_type).model_validate(example_event(event_type))
    return model.model_dump(mode="json")


def _rename_pii(node: Any) -> Any:
    # The catalog tags personal data with "pii"; OpenAPI wants extensions to start with x-.
    if isinstance(node, dict):
        return {
            ("x-pii" if key == "pii" and isinstance(value, str) else key): _rename_pii(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rename_pii(item) for item in node]
    return node


def _event_schemas(event_type: EventType) -> dict[str, Any]:
    """The type's schema and its nested definitions, named ``<event type id>[.<Def>]``."""
    schema = model_for(event_type).model_json_schema(
        ref_template=f"{_SCHEMAS}{event_type.id}.{{model}}"
    )
    defs = schema.pop("$defs", {})
    out = {f"{event_type.id}.{name}": _rename_pii(d) for name, d in defs.items()}
    schema = _rename_pii(schema)
    schema["title"] = event_type.id
    schema["example"] = example_json(event_type)
    out[event_type.id] = schema
    return out


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"{_SCHEMAS}{name}"}


def _content(schema: dict[str, Any], example: Any | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schema": schema}
    if example is not None:
        body["example"] = example
    return body


def _cloudevent_example(event_type: EventType) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "3f0c2a4e-6f0b-4d59-9a55-7f1d2f2c9b11",
        "source": f"/opd/{event_type.opd}/<app>",
        "type": event_type.id,
        "time": "2025-06-10T03:05:00Z",
        "datacontenttype": "application/json",
        "data": example_json(event_type),
    }


def _errors(*codes: str) -> dict[str, Any]:
    problem = {PROBLEM_JSON: _content(_ref("Problem"))}
    return {code: {"description": _ERROR_CODES[code], "content": problem} for code in codes}


_EVENT_ERRORS = ("400", "401", "403", "408", "409", "413", "415", "422", "429", "502", "503")


def _idempotency_header() -> dict[str, Any]:
    return {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "Makes a retry safe: the same key within 24 hours returns the first "
        "answer and publishes nothing new. One key per request (a UUID is a good key); "
        "scoped to the application. CloudEvents requests use their ids when it is absent.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    }


def _single_operation(event_type: EventType) -> dict[str, Any]:
    return {
        "operationId": "publish_" + event_type.id.replace(".", "_"),
        "summary": f"Publish one {event_type.id} event",
        "description": event_type.doc,
        "tags": [event_type.opd],
        "parameters": [_idempotency_header()],
        "requestBody": {
            "required": True,
            "content": {
                JSON: _content(_ref(event_type.id), example_json(event_type)),
                CE_SINGLE: _content(_ref("CloudEvent"), _cloudevent_example(event_type)),
            },
        },
        "responses": {
            "202": {
                "description": "Accepted: acknowledged by Kafka (sent) or on disk in the "
                "gateway's spool (spooled), forwarded in order once Kafka is reachable.",
                "content": {JSON: _content(_ref("Accepted"))},
            },
            **_errors(*_EVENT_ERRORS),
        },
    }


def _components(catalog: Catalog, settings: GatewaySettings) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for event_type in catalog:
        schemas.update(_event_schemas(event_type))
    type_ids = [t.id for t in catalog]
    field_error = {
        "type": "object",
        "properties": {
            "field": {"type": "string", "description": "Dotted path (data.anggota[1].nik)."},
            "rule": {"type": "string", "description": "The broken rule (string_pattern_mismatch)."},
            "message": {"type": "string"},
            "value": {"description": "The value received (null when missing)."},
        },
        "required": ["field", "rule", "message"],
    }
    schemas.update(
        {
            "FieldError": field_error,
            "EventErrors": {
                "type": "object",
                "properties": {
                    "index": {"type": "integer", "description": "Position in the request."},
                    "event_type": {"type": ["string", "null"]},
                    "errors": {"type": "array", "items": _ref("FieldError")},
                },
                "required": ["index", "errors"],
            },
            "Problem": {
                "type": "object",
                "description": "RFC 9457 problem details; `code` is stable for programs.",
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "code": {"type": "string"},
                    "detail": {"type": "string"},
                    "hint": {"type": "string"},
                    "errors": {
                        "type": "array",
                        "description": "422: the problems (per event, by index, for a batch).",
                        "items": {"anyOf": [_ref("FieldError"), _ref("EventErrors")]},
                    },
                },
                "required": ["type", "title", "status", "code", "detail"],
            },
            "Accepted": {
                "type": "object",
                "properties": {
                    "id": {"type": "string", "description": "The event id (ce_id)."},
                    "event_type": {"type": "string"},
                    "status": {"type": "string", "enum": ["sent", "spooled"]},
                },
                "required": ["id", "event_type", "status"],
            },
            "BatchAccepted": {
                "type": "object",
                "properties": {
                    "accepted": {"type": "integer"},
                    "rejected": {"type": "integer"},
                    "events": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "index": {"type": "integer"},
                                "id": {"type": "string"},
                                "event_type": {"type": "string"},
                                "status": {"type": "string", "enum": ["sent", "spooled"]},
                            },
                            "required": ["index", "id", "event_type", "status"],
                        },
                    },
                    "errors": {"type": "array", "items": _ref("EventErrors")},
                },
                "required": ["accepted", "rejected", "events", "errors"],
            },
            "BatchEvent": {
                "description": "One event of a plain batch: its type and data, and "
                "optionally its id (kept as ce_id), time and subject.",
                "oneOf": [
                    {
                        "type": "object",
                        "properties": {
                            "event_type": {"const": type_id},
                            "data": _ref(type_id),
                            "id": {"type": "string", "minLength": 1, "maxLength": 256},
                            "time": {"type": "string", "format": "date-time"},
                            "subject": {"type": "string", "minLength": 1},
                        },
                        "required": ["event_type", "data"],
                        "additionalProperties": False,
                    }
                    for type_id in type_ids
                ],
            },
            "CloudEvent": {
                "type": "object",
                "description": "CloudEvents 1.0, structured mode, JSON data. `source` must be "
                "the calling application's /opd/<opd>/<app>; `id` is the event id and the "
                "idempotency key.",
                "properties": {
                    "specversion": {"type": "string", "enum": ["1.0"]},
                    "id": {"type": "string", "minLength": 1, "maxLength": 256},
                    "source": {"type": "string", "minLength": 1},
                    "type": {"type": "string", "enum": type_ids},
                    "time": {"type": "string", "format": "date-time"},
                    "subject": {"type": "string", "minLength": 1},
                    "datacontenttype": {"type": "string", "enum": [JSON]},
                    "data": {"type": "object"},
                },
                "required": ["specversion", "id", "source", "type", "data"],
            },
        }
    )
    return {
        "schemas": schemas,
        "securitySchemes": {
            "apiKey": {
                "type": "http",
                "scheme": "bearer",
                "description": "The application's API key (lintas apps add / rotate-key).",
            }
        },
    }


def build_openapi(catalog: Catalog, settings: GatewaySettings) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the gateway for ``catalog``."""
    paths: dict[str, Any] = {}
    for event_type in catalog:
        paths[f"/v1/events/{event_type.id}"] = {"post": _single_operation(event_type)}
    first = next(iter(catalog))
    batch_example = [{"event_type": t.id, "data": example_json(t)} for t in list(catalog)[:2]]
    paths["/v1/events"] = {
        "post": {
            "operationId": "publish_cloudevent",
            "summary": "Publish one CloudEvent (structured mode), of any event type",
            "tags": ["events"],
            "parameters": [_idempotency_header()],
            "requestBody": {
                "required": True,
                "content": {CE_SINGLE: _content(_ref("CloudEvent"), _cloudevent_example(first))},
            },
            "responses": {
                "202": {"description": "Accepted.", "content": {JSON: _content(_ref("Accepted"))}},
                **_errors(*_EVENT_ERRORS),
            },
        }
    }
    paths["/v1/events:batch"] = {
        "post": {
            "operationId": "publish_batch",
            "summary": f"Publish up to {settings.max_batch_events} events",
            "description": "All or nothing by default: one invalid event refuses the batch "
            "(422, every problem listed by index). With partial=true the valid events are "
            "published and the rest reported by index.",
            "tags": ["events"],
            "parameters": [
                _idempotency_header(),
                {
                    "name": "partial",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "boolean", "default": False},
                    "description": "Publish the valid events, report the invalid ones.",
                },
            ],
            "requestBody": {
                "required": True,
                "content": {
                    JSON: _content(
                        {
                            "type": "array",
                            "items": _ref("BatchEvent"),
                            "minItems": 1,
                            "maxItems": settings.max_batch_events,
                        },
                        batch_example,
                    ),
                    NDJSON: _content({"type": "string", "description": "One BatchEvent per line."}),
                    CE_BATCH: _content(
                        {
                            "type": "array",
                            "items": _ref("CloudEvent"),
                            "minItems": 1,
                            "maxItems": settings.max_batch_events,
                        }
                    ),
                },
            },
            "responses": {
                "202": {
                    "description": "Accepted (with partial=true, possibly only some events).",
                    "content": {JSON: _content(_ref("BatchAccepted"))},
                },
                **_errors(*_EVENT_ERRORS),
            },
        }
    }
    probes = {
        "/healthz": ("healthz", "Liveness: the process answers."),
        "/readyz": ("readyz", "Readiness: directory caught up and producer started (503 if not)."),
        "/metrics": ("metrics", "Prometheus metrics, the producer's included."),
    }
    for path, (name, summary) in probes.items():
        responses: dict[str, Any] = {"200": {"description": "OK."}}
        if name == "readyz":
            responses["503"] = {"description": "Not ready."}
        paths[path] = {
            "get": {
                "operationId": name,
                "summary": summary,
                "tags": ["operations"],
                "security": [],
                "responses": responses,
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Lintas ingest gateway",
            "version": "1",
            "description": "Publish events of the Lintas contract catalog over HTTP, from "
            "any language. Authenticate with the application's API key "
            "(`Authorization: Bearer lk_...`). See docs/gateway.md.",
        },
        "security": [{"apiKey": []}],
        "paths": paths,
        "components": _components(catalog, settings),
    }

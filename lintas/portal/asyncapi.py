"""The catalog as an AsyncAPI 3.0 document: one channel and one message per event type.

Each channel is an OPD topic (``opd.<opd>.<event>.v<N>``) that applications send to; its
message carries the event's Avro schema unchanged (``schemaFormat``
``application/vnd.apache.avro+json;version=1.9.0``), the CloudEvents headers of the Kafka
binding in binary mode, the key (the subject field) and the Confluent wire format in the
Kafka message binding, the catalog's example, and the personal-data tags as an ``x-`` field.

``lintas catalog export`` writes it; the portal serves it at ``/catalog/asyncapi.json``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import orjson

from lintas.schemas import Catalog, EventType, example_event

__all__ = ["AVRO_FORMAT", "asyncapi_document", "asyncapi_json"]

AVRO_FORMAT = "application/vnd.apache.avro+json;version=1.9.0"
_KAFKA_BINDING = "0.5.0"

_CE_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "CloudEvents 1.0 attributes, Kafka protocol binding in binary mode.",
    "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type"],
    "properties": {
        "ce_specversion": {"type": "string", "const": "1.0"},
        "ce_id": {"type": "string", "description": "Event id, unique per event; dedup key."},
        "ce_source": {"type": "string", "description": "/opd/<opd>/<application id>"},
        "ce_type": {"type": "string", "description": "The event type id."},
        "ce_time": {"type": "string", "format": "date-time"},
        "ce_subject": {"type": "string", "description": "The subject (the Kafka key)."},
        "content-type": {"type": "string", "const": "application/avro"},
    },
}


def _package_version() -> str:
    try:
        return version("lintas")
    except PackageNotFoundError:  # a source tree without an install
        return "0.0.0"


def _example_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _example_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_example_value(v) for v in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    return value


def _message(et: EventType) -> dict[str, Any]:
    return {
        "name": et.record_name,
        "title": et.id,
        "summary": et.doc.split(". ")[0].rstrip(".") + ".",
        "description": et.doc,
        "contentType": "application/avro",
        "headers": _CE_HEADERS,
        "payload": {"schemaFormat": AVRO_FORMAT, "schema": et.schema},
        "correlationId": {
            "description": "The CloudEvents id of the event.",
            "location": "$message.header#/ce_id",
        },
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "description": f"The subject: the event's `{et.subject_field}` field.",
                },
                "schemaIdLocation": "payload",
                # Confluent wire format: magic byte 0, 4-byte schema id, then the Avro body.
                "schemaIdPayloadEncoding": "confluent",
                "schemaLookupStrategy": "TopicNameStrategy",
                "bindingVersion": _KAFKA_BINDING,
            }
        },
        "examples": [{"name": "contoh", "payload": _example_value(example_event(et))}],
        "x-lintas-subject": et.subject,
        "x-lintas-pii": dict(et.pii_fields),
    }


def asyncapi_document(
    catalog: Catalog, *, kafka_bootstrap: str | None = None, partitions: int = 3
) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of every event type in ``catalog``.

    Args:
        catalog: the event types.
        kafka_bootstrap: the broker address to name as the server (a placeholder if None).
        partitions: the platform partition count, shown in each channel's Kafka binding.
    """
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for et in catalog:
        messages[et.id] = _message(et)
        channels[et.id] = {
            "address": et.topic,
            "title": et.id,
            "description": et.doc,
            "messages": {et.record_name: {"$ref": f"#/components/messages/{et.id}"}},
            "bindings": {
                "kafka": {
                    "topic": et.topic,
                    "partitions": partitions,
                    "bindingVersion": _KAFKA_BINDING,
                }
            },
        }
        operations[f"publish.{et.id}"] = {
            "action": "send",
            "title": f"Publish {et.id}",
            "summary": f"An application of {et.opd} publishes {et.name} (v{et.major}).",
            "channel": {"$ref": f"#/channels/{et.id}"},
            "messages": [{"$ref": f"#/channels/{et.id}/messages/{et.record_name}"}],
        }
    return {
        "asyncapi": "3.0.0",
        "id": "urn:lintas:catalog",
        "info": {
            "title": "Lintas event catalog",
            "version": _package_version(),
            "description": (
                "Domain events the OPD applications of a Pemda publish to Lintas. Payloads "
                "are Avro in the Confluent wire format; fields tagged in x-lintas-pii hold "
                "personal data (UU 27/2022 PDP)."
            ),
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": "application/avro",
        "servers": {
            "lintas": {
                "host": kafka_bootstrap or "localhost:9092",
                "protocol": "kafka",
                "description": "The Lintas Kafka cluster (SASL/SCRAM on every listener).",
                "security": [{"$ref": "#/components/securitySchemes/scram"}],
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "securitySchemes": {
                "scram": {
                    "type": "scramSha512",
                    "description": "Each application has its own principal.",
                }
            },
        },
    }


def asyncapi_json(catalog: Catalog, **options: Any) -> bytes:
    """:func:`asyncapi_document` as indented JSON."""
    return orjson.dumps(asyncapi_document(catalog, **options), option=orjson.OPT_INDENT_2)

"""What a delivery topic carries, read the same way by the deliverer and the subscriber SDK.

Each record of ``lintas.deliver.<subscriber>`` is one routed event, written by the stream
workers' routing stage:

- headers: the CloudEvents attributes in Kafka binary mode (``ce_id``, ``ce_type``,
  ``ce_source``, ``ce_time``, ``ce_subject``, ``content-type``);
- key: the event's subject (a NIK for citizen events), so one citizen's events keep order;
- value: Avro in the Confluent wire format, written with the subscriber's *projected* schema
  (only the fields its subscription may see), registered under a TopicRecordNameStrategy
  subject. Nothing here knows that schema in advance: the writer schema is fetched from the
  registry by the id in the frame, once per id.
"""

from __future__ import annotations

import base64
import decimal
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from lintas.schemas import AvroDeserializer, DeserializationError, SchemaResolver

__all__ = [
    "CE_ID",
    "CE_SOURCE",
    "CE_SUBJECT",
    "CE_TIME",
    "CE_TYPE",
    "DeliveryEnvelope",
    "RecordDecoder",
    "json_body",
    "read_envelope",
]

# The CloudEvents Kafka protocol binding's header names (binary mode), as the workers write them.
CE_ID = "ce_id"
CE_SOURCE = "ce_source"
CE_TYPE = "ce_type"
CE_TIME = "ce_time"
CE_SUBJECT = "ce_subject"

Headers = Sequence[tuple[str, bytes | None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryEnvelope:
    """The CloudEvents attributes of one delivery record (``None`` when a header is absent)."""

    id: str | None
    type: str | None
    source: str | None
    time: str | None
    """``ce_time`` as written (RFC 3339); kept as text, it is only passed on."""
    subject: str | None


def _text(value: bytes | None) -> str | None:
    if value is None:
        return None
    text = value.decode("utf-8", errors="replace")
    return text or None


def read_envelope(headers: Headers) -> DeliveryEnvelope:
    """The CloudEvents attributes of a record; the last header of a name wins."""
    found: dict[str, bytes | None] = {}
    for name, value in headers:
        if name in (CE_ID, CE_TYPE, CE_SOURCE, CE_TIME, CE_SUBJECT):
            found[name] = value
    return DeliveryEnvelope(
        id=_text(found.get(CE_ID)),
        type=_text(found.get(CE_TYPE)),
        source=_text(found.get(CE_SOURCE)),
        time=_text(found.get(CE_TIME)),
        subject=_text(found.get(CE_SUBJECT)),
    )


class RecordDecoder:
    """Decodes delivery record values with their writer schema from the registry.

    Args:
        resolver: the schema registry client (any :class:`~lintas.schemas.SchemaResolver`).
    """

    __slots__ = ("_deserializer",)

    def __init__(self, resolver: SchemaResolver) -> None:
        # No reader schema: a projected schema is not any catalog type's, so records are
        # returned exactly as the routing stage wrote them.
        self._deserializer = AvroDeserializer(resolver)

    async def decode(
        self, value: bytes | None, *, topic: str, partition: int, offset: int
    ) -> dict[str, Any]:
        """The record, with Avro logical types as Python values.

        Raises:
            DeserializationError: no value, a bad frame, an unknown schema id
                (``UnknownSchemaId``) or a body that does not decode.
            lintas.schemas.registry.RegistryUnavailable: the registry cannot be reached
                (retriable: nothing is wrong with the record).
        """
        if value is None:
            raise DeserializationError(
                "the record has no value", topic=topic, partition=partition, offset=offset
            )
        return await self._deserializer.deserialize(
            value, topic=topic, partition=partition, offset=offset
        )

    async def writer_fields(self, value: bytes) -> tuple[str, ...]:
        """The top-level field names of the schema ``value`` was written with (cached)."""
        from lintas.schemas import parse_header

        schema = await self._deserializer.writer_schema(parse_header(value))
        return tuple(f["name"] for f in schema.get("fields", ()))


def _json_default(value: Any) -> Any:
    # Decimals as text: a JSON number would lose the scale (and precision beyond a double);
    # bytes as base64, the usual JSON spelling of binary.
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_body(envelope: DeliveryEnvelope, data: Mapping[str, Any]) -> bytes:
    """The webhook body: the event as a CloudEvents 1.0 JSON document (structured mode).

    ``type`` and ``data`` are also what Standard Webhooks recommends for a payload; dates and
    times are ISO 8601 / RFC 3339 text (UTC), decimals are strings, bytes base64.
    """
    doc: dict[str, Any] = {"specversion": "1.0", "id": envelope.id, "type": envelope.type}
    if envelope.source is not None:
        doc["source"] = envelope.source
    if envelope.subject is not None:
        doc["subject"] = envelope.subject
    if envelope.time is not None:
        doc["time"] = envelope.time
    doc["datacontenttype"] = "application/json"
    doc["data"] = data
    return orjson.dumps(
        doc, default=_json_default, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS
    )

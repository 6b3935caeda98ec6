"""What the catalog pages show about an event type: fields, example, how to publish it.

Everything is derived from the ``.avsc`` in :mod:`lintas.schemas` (fields, docs, PII tags)
and :func:`lintas.schemas.example_event` (the example); the pages add what the registry and
the directory say at request time.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from lintas.schemas import EventType, example_event

__all__ = [
    "FieldRow",
    "curl_snippet",
    "example_json",
    "field_rows",
    "pretty_json",
    "sdk_snippet",
    "type_label",
]

_LOGICAL = {
    "date": "date",
    "timestamp-millis": "timestamp",
    "timestamp-micros": "timestamp",
    "time-millis": "time",
    "decimal": "decimal",
    "uuid": "uuid",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldRow:
    """One field of an event type, nested ones with a dotted path (``anggota[].nik``)."""

    path: str
    depth: int
    type: str
    required: bool
    doc: str
    pii: str | None
    symbols: tuple[str, ...] = ()


def type_label(schema: Any) -> str:
    """A short, readable name of an Avro type: ``string``, ``date``, ``enum``, ``array<record>``."""
    if isinstance(schema, str):
        return schema if schema in _PRIMITIVES else schema.rsplit(".", 1)[-1]
    if isinstance(schema, list):
        branches = [type_label(b) for b in schema if b != "null"]
        return " | ".join(branches) + (" | null" if "null" in schema else "")
    logical = schema.get("logicalType")
    if logical in _LOGICAL:
        return _LOGICAL[logical]
    kind = schema.get("type")
    if kind == "array":
        return f"array<{type_label(schema['items'])}>"
    if kind == "map":
        return f"map<{type_label(schema['values'])}>"
    if kind in ("enum", "record", "fixed"):
        return str(kind)
    return type_label(kind)


_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def _inner_record(schema: Any) -> tuple[dict[str, Any] | None, str]:
    """The record inside a field's type (directly, nullable, or as array items), and the
    path suffix that reaches into it (``""`` or ``"[]"``)."""
    if isinstance(schema, list):
        for branch in schema:
            found = _inner_record(branch)
            if found[0] is not None:
                return found
        return None, ""
    if isinstance(schema, dict):
        if schema.get("type") == "record":
            return schema, ""
        if schema.get("type") == "array":
            inner, _ = _inner_record(schema["items"])
            return inner, "[]"
    return None, ""


def _symbols(schema: Any) -> tuple[str, ...]:
    if isinstance(schema, list):
        return next((s for b in schema if (s := _symbols(b))), ())
    if isinstance(schema, dict) and schema.get("type") == "enum":
        return tuple(schema["symbols"])
    return ()


def field_rows(event_type: EventType) -> list[FieldRow]:
    """Every field with its doc and PII tag, nested records flattened in order."""
    rows: list[FieldRow] = []

    def walk(record: dict[str, Any], prefix: str, depth: int) -> None:
        for f in record["fields"]:
            path = f"{prefix}{f['name']}"
            ftype = f["type"]
            nullable = isinstance(ftype, list) and "null" in ftype
            rows.append(
                FieldRow(
                    path=path,
                    depth=depth,
                    type=type_label(ftype),
                    required=not nullable and "default" not in f,
                    doc=str(f.get("doc", "")),
                    pii=event_type.pii_fields.get(path),
                    symbols=_symbols(ftype),
                )
            )
            inner, suffix = _inner_record(ftype)
            if inner is not None:
                walk(inner, f"{path}{suffix}.", depth + 1)

    walk(event_type.schema, "", 0)
    return rows


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"cannot show {type(value).__name__} as JSON")


def pretty_json(value: Any) -> str:
    """Indented JSON of a decoded Avro record (dates, decimals and UUIDs as strings)."""
    return orjson.dumps(
        value, default=_json_default, option=orjson.OPT_INDENT_2 | orjson.OPT_PASSTHROUGH_DATETIME
    ).decode()


def example_json(event_type: EventType) -> str:
    """The catalog's example of the event as the gateway takes it (JSON, indented).

    The people in it are invented (see :mod:`lintas.schemas.examples`).
    """
    return pretty_json(example_event(event_type))


def curl_snippet(event_type: EventType, gateway_url: str | None) -> str:
    """How an app in any language publishes one event through the HTTP gateway."""
    base = gateway_url or "http://GATEWAY:8080"
    return (
        f"curl -X POST {base}/v1/events/{event_type.id} \\\n"
        '  -H "Authorization: Bearer $LINTAS_API_KEY" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        f"  --data @{event_type.name}.json"
    )


def sdk_snippet(event_type: EventType) -> str:
    """How a Python app publishes the event with the producer SDK (:mod:`lintas.producers`)."""
    return (
        "from lintas.producers import EventProducer\n"
        "from lintas.schemas import model_for\n\n"
        f'{event_type.record_name} = model_for("{event_type.id}")\n\n'
        f'async with EventProducer(app="APP_ID", opd="{event_type.opd}") as producer:\n'
        f"    event = {event_type.record_name}.model_validate(data)\n"
        "    delivery = await producer.send(event)  # after the broker has it, or spooled\n"
        "    print(delivery.event_id, delivery.status)"
    )

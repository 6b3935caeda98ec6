"""Personal data out of what the portal shows: PII-tagged fields and NIKs in free text.

Dead letters hold citizens' data. The DLQ pages show why a record was refused and what it
carried, but with every field the contract tags as personal data replaced, and NIKs, phone
numbers and the like masked in messages (``lokal.mask_pii``), so an operator can fix the
cause without reading anyone's data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lokal

from lintas.schemas import EventType

__all__ = ["MASK", "mask_record", "mask_text"]

MASK = "\u2022\u2022\u2022"


def mask_text(text: str) -> str:
    """``text`` with NIKs, phone numbers, emails and other identifiers replaced."""
    return str(lokal.mask_pii(text).text) if text else text


def _mask_path(value: Any, parts: list[str]) -> Any:
    if not parts:
        return None if value is None else MASK
    head, rest = parts[0], parts[1:]
    if head.endswith("[]"):
        items = value.get(head[:-2]) if isinstance(value, Mapping) else None
        if isinstance(items, list):
            return {
                **value,
                head[:-2]: [_mask_path(item, rest) if rest else MASK for item in items],
            }
        return value
    if isinstance(value, Mapping) and head in value:
        return {**value, head: _mask_path(value[head], rest)}
    return value


def mask_record(record: Mapping[str, Any], event_type: EventType | None) -> dict[str, Any]:
    """A copy of ``record`` with every PII-tagged field (``anggota[].nik`` too) masked.

    Without a known event type nothing can be told apart, so every string is masked.
    """
    if event_type is None:
        return {k: (MASK if isinstance(v, str) else v) for k, v in record.items()}
    masked: dict[str, Any] = dict(record)
    for path in event_type.pii_fields:
        # "anggota[].nik" -> ["anggota[]", "nik"]
        masked = _mask_path(masked, path.split("."))
    return masked

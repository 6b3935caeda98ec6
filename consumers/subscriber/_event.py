"""A delivered event as the SDK hands it over, and how its payload becomes typed.

**Typed or dict.** The routing stage sends each subscriber only the fields its subscriptions
allow (data minimisation, UU 27/2022 PDP), written with a *projected* schema. The catalog's
pydantic model of an event type (:func:`lintas.schemas.model_for`) has every field of the
type, most of them required, so it can only describe a record that has them all:

- when the record carries every field of its catalog type (a subscription with ``fields:
  ["*"]``), ``event.data`` is that model, validated (``KematianDicatat(...)``);
- otherwise (a projection, an event type this SDK version does not know, or a record the
  model refuses), ``event.data`` is the record as a dict, exactly as delivered.

``event.record`` is always the dict, so code can read delivered fields the same way in both
cases; ``event.typed`` says which one ``data`` is.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from lintas.schemas import Catalog, EventModel, EventType, UnknownEventType, model_for

__all__ = ["DeliveredEvent", "TypedResolver"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveredEvent:
    """One event of a subscriber's delivery topic.

    Attributes:
        id: the CloudEvents id (``ce_id``): the same on every redelivery, the key to
            deduplicate on (see :class:`SeenEvents`).
        type: ``ce_type`` (``dukcapil.kematian_dicatat.v1``).
        source: ``ce_source`` (``/opd/dukcapil/siak``).
        subject: ``ce_subject`` (a NIK for citizen events), or None.
        time: ``ce_time``, when the event happened, or None.
        data: the catalog model when the record has every field of its type, else the dict.
        record: the record as delivered (the fields the subscriber may see).
        key: the Kafka key.
        topic, partition, offset: where it was read.
        attempt: 1 on the first try; more when a failed handler gets it again.
    """

    id: str
    type: str | None
    source: str | None
    subject: str | None
    time: dt.datetime | None
    data: EventModel | dict[str, Any]
    record: dict[str, Any] = field(repr=False)
    key: bytes | None = field(repr=False)
    topic: str
    partition: int
    offset: int
    attempt: int = 1

    @property
    def typed(self) -> bool:
        """True when ``data`` is the catalog's model of the event type."""
        return not isinstance(self.data, dict)


class TypedResolver:
    """Finds the catalog type of an event and builds its model when the record allows.

    Args:
        catalog: the event types this SDK knows.
    """

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._types: dict[str, EventType | None] = {}

    def event_type(self, ce_type: str | None) -> EventType | None:
        """The catalog type ``ce_type`` names: its id, or a reverse-DNS-prefixed id."""
        if not ce_type:
            return None
        if ce_type not in self._types:
            found: EventType | None
            try:
                found = self._catalog.get(ce_type)
            except UnknownEventType:
                found = next((et for et in self._catalog if ce_type.endswith("." + et.id)), None)
            self._types[ce_type] = found
        return self._types[ce_type]

    def data(self, ce_type: str | None, record: Mapping[str, Any]) -> EventModel | dict[str, Any]:
        """The model of ``record`` when it has every field of its type, else the dict."""
        event_type = self.event_type(ce_type)
        if event_type is None:
            return dict(record)
        names = [f["name"] for f in event_type.schema["fields"]]
        if not all(name in record for name in names):
            return dict(record)  # a projection: the model would miss required fields
        try:
            # Fields beyond the type's (a newer minor version) stay in event.record only.
            return model_for(event_type).model_validate({n: record[n] for n in names})
        except ValidationError as exc:
            log.warning("event of %s does not fit its model, passed as a dict: %s", ce_type, exc)
            return dict(record)


def parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)

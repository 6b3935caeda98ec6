"""Which event type an OPD topic carries: the catalog's, or one registered while running.

Workers ship with the catalog of their release, but an OPD may register a new event type
(``lintas schemas register``) while they run. For a topic the catalog does not know, the
latest schema under the topic's subject (``<topic>-value``) is read from the registry and
loaded under the same rules as a catalog file, so new event types flow without a restart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from importlib.resources.abc import Traversable
from typing import cast

from lintas.schemas import Catalog, CatalogError, EventType, load_catalog
from lintas.schemas.registry import SchemaRegistryClient, SubjectNotFound

from .dlq import Reason
from .exceptions import RecordRejected
from .naming import StreamTopics

__all__ = ["EventTypeResolver", "event_type_from_schema"]


class _Entry:
    """An in-memory file or folder: what :meth:`Catalog.from_directory` reads of a Traversable."""

    def __init__(
        self, name: str, *, data: bytes | None = None, children: Sequence[_Entry] = ()
    ) -> None:
        self._name = name
        self._data = data
        self._children = list(children)

    @property
    def name(self) -> str:
        return self._name

    def iterdir(self) -> Iterator[_Entry]:
        return iter(self._children)

    def is_dir(self) -> bool:
        return self._data is None

    def is_file(self) -> bool:
        return self._data is not None

    def read_bytes(self) -> bytes:
        assert self._data is not None
        return self._data


def event_type_from_schema(event_type_id: str, schema: str) -> EventType:
    """Load one event type from its schema text under the catalog's rules.

    Args:
        event_type_id: ``<opd>.<event>.v<N>``; names the file the schema would be.
        schema: the ``.avsc`` text (as registered: custom attributes included).

    Raises:
        CatalogError: the schema breaks a catalog rule.
    """
    opd, event, version = event_type_id.split(".")
    file = _Entry(f"{event}.{version}.avsc", data=schema.encode())
    root = _Entry("catalog", children=[_Entry(opd, children=[file])])
    catalog = Catalog.from_directory(cast(Traversable, root))
    return catalog.get(event_type_id)


class EventTypeResolver:
    """Finds the event type of an OPD topic: the catalog first, then the registry.

    Args:
        registry: where schemas registered after this release come from.
        names: the worker's topic names (for the prefix).
        catalog: the release's catalog.
        retry_unknown_s: a topic without a schema is asked about again after this long, not
            on every record.
    """

    def __init__(
        self,
        registry: SchemaRegistryClient,
        names: StreamTopics,
        catalog: Catalog | None = None,
        *,
        retry_unknown_s: float = 30.0,
    ) -> None:
        self._registry = registry
        self._names = names
        self._catalog = catalog or load_catalog()
        self._retry_unknown_s = retry_unknown_s
        self._found: dict[str, EventType] = {}
        self._unknown: dict[str, tuple[float, str]] = {}

    async def for_topic(self, topic: str) -> EventType:
        """The event type of ``topic``.

        Raises:
            RecordRejected: ``unknown_event_type`` when neither catalog nor registry knows it.
            RegistryUnavailable: the registry cannot be reached (retriable).
        """
        found = self._found.get(topic)
        if found is not None:
            return found
        type_id = self._names.event_type_id(topic)
        if type_id is None:
            raise RecordRejected(Reason.UNKNOWN_EVENT_TYPE, f"{topic} is not an OPD topic")
        if type_id in self._catalog:
            found = self._catalog.get(type_id)
        else:
            found = await self._from_registry(topic, type_id)
        self._found[topic] = found
        return found

    async def _from_registry(self, topic: str, type_id: str) -> EventType:
        unknown = self._unknown.get(topic)
        if unknown is not None and time.monotonic() < unknown[0]:
            raise RecordRejected(Reason.UNKNOWN_EVENT_TYPE, unknown[1])
        subject = f"{topic}-value"
        try:
            latest = await self._registry.get_latest_version(subject)
            return event_type_from_schema(type_id, latest.schema)
        except SubjectNotFound:
            why = f"{type_id} is not in the catalog and the registry has no subject {subject}"
        except CatalogError as exc:
            why = f"the registered schema of {subject} breaks a catalog rule: {exc.message}"
        self._unknown[topic] = (time.monotonic() + self._retry_unknown_s, why)
        raise RecordRejected(Reason.UNKNOWN_EVENT_TYPE, why)

    def known(self, topic: str) -> EventType | None:
        """The event type of ``topic`` if it was resolved before (no look-up)."""
        return self._found.get(topic)

"""The contract catalog: one ``.avsc`` file per event type, loaded from the package.

Layout: ``catalog/<opd>/<event>.v<major>.avsc`` inside :mod:`lintas.schemas`, read with
:mod:`importlib.resources` so that the catalog works the same from a checkout and from an
installed wheel. Every file must follow these rules (checked at load; a broken file raises
:class:`~lintas.schemas.exceptions.CatalogError` naming the file and the rule):

- the OPD code is lowercase ASCII letters and digits, the event name lowercase ``snake_case``,
  the major version a positive integer;
- the top-level type is a record named after the event in PascalCase
  (``kematian_dicatat`` -> ``KematianDicatat``) in the namespace ``id.lintas.<opd>``,
  with a ``doc``;
- every field, nested ones included, has a non-empty ``doc``;
- ``subject_field`` names a top-level, non-null ``string`` field: the Kafka key (the NIK for
  citizen events, so one citizen's events stay in order);
- ``pii`` attributes, when present, use a kind from :data:`PII_KINDS`;
- fastavro parses the schema.

Naming derived from the file::

    event type id   dukcapil.kematian_dicatat.v1
    topic           opd.dukcapil.kematian_dicatat.v1
    subject         opd.dukcapil.kematian_dicatat.v1-value
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from importlib.resources.abc import Traversable
from types import MappingProxyType
from typing import Any, cast

import fastavro
import orjson

from ._avro import NAMED, PRIMITIVES, full_name, namespace_of, nullable_branch, resolve
from .exceptions import CatalogError, UnknownEventType

__all__ = [
    "PII_KINDS",
    "Catalog",
    "EventType",
    "load_catalog",
]

PII_KINDS: frozenset[str] = frozenset(
    {
        "nik",  # Nomor Induk Kependudukan
        "nomor_kk",  # family card number
        "nama",  # a person's name
        "alamat",  # street address or place of an event at someone's home
        "telepon",
        "email",
        "tanggal_lahir",
        "tempat_lahir",
        "kesehatan",  # health data: diagnoses, cause of death, birth weight (UU PDP: specific)
        "ekonomi",  # welfare decile and other financial standing (UU PDP: specific)
        "npwp",
        "nisn",
        "bpjs",
        "teks_bebas",  # free text a citizen wrote, may contain anything
    }
)
"""Kinds of personal data a field may be tagged with (``"pii": "<kind>"``)."""

_OPD_RE = re.compile(r"[a-z][a-z0-9]*")
_EVENT_RE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
_FILE_RE = re.compile(r"(?P<event>[a-z0-9_]+)\.v(?P<major>[1-9][0-9]*)\.avsc")
_ID_RE = re.compile(
    r"(?:opd\.|lintas\.canonical\.)?(?P<opd>[a-z0-9]+)\.(?P<event>[a-z0-9_]+)"
    r"(?:\.v(?P<major>[0-9]+))?(?:-value)?"
)

TOPIC_PREFIX = "opd."
CANONICAL_TOPIC_PREFIX = "lintas.canonical."


def pascal_case(event: str) -> str:
    """Return the record name of an event: ``kematian_dicatat`` -> ``KematianDicatat``."""
    return "".join(part[:1].upper() + part[1:] for part in event.split("_"))


@dataclass(frozen=True, slots=True, kw_only=True)
class EventType:
    """One event type of the catalog: its names, its schema and its contract metadata.

    Equality and hashing use :attr:`id` only, so event types can key dicts and sets.

    Attributes:
        opd: OPD code (``dukcapil``).
        name: event name (``kematian_dicatat``).
        major: major version (``1``); a breaking change is a new file with the next major.
        topic: Kafka topic OPD apps publish to (``opd.dukcapil.kematian_dicatat.v1``).
        subject: schema registry subject (``<topic>-value``).
        schema: the ``.avsc`` as loaded; treat it as read-only.
        parsed_schema: the schema parsed by :func:`fastavro.parse_schema`, ready for the serde.
        schema_str: the schema as compact JSON, the text to register.
        full_name: Avro full name of the record (``id.lintas.dukcapil.KematianDicatat``).
        record_name: the record's short name, also the model class name.
        subject_field: top-level field whose value is the Kafka key.
        pii_fields: field path -> personal-data kind; nested fields read ``anggota[].nik``.
        doc: what the event means, from the record's ``doc``.
    """

    opd: str
    name: str
    major: int
    topic: str
    subject: str
    schema: dict[str, Any] = field(compare=False, repr=False)
    parsed_schema: dict[str, Any] = field(compare=False, repr=False)
    schema_str: str = field(compare=False, repr=False)
    full_name: str = field(compare=False)
    record_name: str = field(compare=False, repr=False)
    subject_field: str = field(compare=False, repr=False)
    pii_fields: Mapping[str, str] = field(compare=False, repr=False)
    doc: str = field(compare=False, repr=False)

    @property
    def id(self) -> str:
        """The event type id, ``<opd>.<event>.v<major>`` (``dukcapil.kematian_dicatat.v1``)."""
        return f"{self.opd}.{self.name}.v{self.major}"

    @property
    def canonical_topic(self) -> str:
        """The topic of the validated, enriched stream (``lintas.canonical.<opd>.<event>.v<N>``)."""
        return f"{CANONICAL_TOPIC_PREFIX}{self.opd}.{self.name}.v{self.major}"

    def key_of(self, record: Mapping[str, Any]) -> str:
        """Return the Kafka key of a record of this type: the value of :attr:`subject_field`."""
        return str(record[self.subject_field])


class Catalog:
    """The set of event types, looked up by id, topic or subject.

    Usage::

        catalog = load_catalog()
        kematian = catalog.get("dukcapil.kematian_dicatat.v1")
        catalog.get("opd.dukcapil.kematian_dicatat.v1") is kematian
        [t.id for t in catalog.by_opd("dukcapil")]
    """

    __slots__ = ("_by_key", "_by_opd", "_types")

    def __init__(self, event_types: Iterable[EventType]) -> None:
        types = sorted(event_types, key=lambda t: (t.opd, t.name, t.major))
        self._types: tuple[EventType, ...] = tuple(types)
        by_key: dict[str, EventType] = {}
        by_opd: dict[str, list[EventType]] = {}
        for event_type in types:
            for key in (
                event_type.id,
                event_type.topic,
                event_type.subject,
                event_type.canonical_topic,
                event_type.full_name,
            ):
                by_key[key] = event_type
            # Versionless ids resolve to the newest major: types are sorted by major.
            by_key[f"{event_type.opd}.{event_type.name}"] = event_type
            by_opd.setdefault(event_type.opd, []).append(event_type)
        self._by_key = by_key
        self._by_opd = {opd: tuple(ts) for opd, ts in by_opd.items()}

    @classmethod
    def from_directory(cls, root: Traversable) -> Catalog:
        """Load a catalog from a directory laid out as ``<opd>/<event>.v<major>.avsc``.

        Args:
            root: the catalog directory (a :class:`pathlib.Path` works).

        Raises:
            CatalogError: a file breaks a catalog rule.
        """
        event_types: list[EventType] = []
        for opd_dir in sorted(root.iterdir(), key=lambda p: p.name):
            if not opd_dir.is_dir() or opd_dir.name.startswith((".", "_")):
                continue
            for entry in sorted(opd_dir.iterdir(), key=lambda p: p.name):
                if entry.is_file() and entry.name.endswith(".avsc"):
                    event_types.append(_load_file(opd_dir.name, entry))
        return cls(event_types)

    def get(self, key: str | EventType) -> EventType:
        """Return the event type named by an id, topic, subject or record full name.

        Accepted forms: ``dukcapil.kematian_dicatat.v1``, ``dukcapil.kematian_dicatat`` (the
        newest major), ``opd.dukcapil.kematian_dicatat.v1``, its ``-value`` subject, the
        canonical topic ``lintas.canonical.dukcapil.kematian_dicatat.v1``, and the Avro full
        name ``id.lintas.dukcapil.KematianDicatat``. An :class:`EventType` is returned as is.

        Raises:
            UnknownEventType: nothing matches; the error lists the closest ids.
        """
        if isinstance(key, EventType):
            return key
        try:
            return self._by_key[key]
        except KeyError:
            raise UnknownEventType(key, self._suggest(key)) from None

    def by_opd(self, opd: str) -> tuple[EventType, ...]:
        """Return the event types an OPD publishes (empty when it publishes none yet)."""
        return self._by_opd.get(opd, ())

    @property
    def opds(self) -> tuple[str, ...]:
        """The OPD codes that have at least one event type, sorted."""
        return tuple(sorted(self._by_opd))

    def __iter__(self) -> Iterator[EventType]:
        return iter(self._types)

    def __len__(self) -> int:
        return len(self._types)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, EventType):
            return self._by_key.get(key.id) == key
        return isinstance(key, str) and key in self._by_key

    def __repr__(self) -> str:
        return f"<Catalog {len(self._types)} event types from {len(self._by_opd)} OPDs>"

    def _suggest(self, key: str) -> list[str]:
        ids = [t.id for t in self._types]
        match = _ID_RE.fullmatch(key.strip().lower())
        probe = f"{match['opd']}.{match['event']}" if match else key.lower()
        # Compare versionless forms, so "dukcapil.kematian.v1" still finds the v1 event.
        versionless = {f"{t.opd}.{t.name}": t.id for t in self._types}
        close = difflib.get_close_matches(probe, list(versionless), n=3, cutoff=0.6)
        found = [versionless[c] for c in close]
        if not found:
            found = difflib.get_close_matches(key, ids, n=3, cutoff=0.5)
        return found


@functools.cache
def load_catalog() -> Catalog:
    """Return the catalog shipped in :mod:`lintas.schemas` (loaded once, then cached).

    Raises:
        CatalogError: a shipped file breaks a catalog rule (a bug in the release).
    """
    return Catalog.from_directory(files(__package__ or "lintas.schemas").joinpath("catalog"))


def _load_file(opd: str, entry: Traversable) -> EventType:
    path = f"{opd}/{entry.name}"
    if not _OPD_RE.fullmatch(opd):
        raise CatalogError(path, "the OPD folder must be lowercase ASCII letters and digits")
    match = _FILE_RE.fullmatch(entry.name)
    if not match or not _EVENT_RE.fullmatch(match["event"]):
        raise CatalogError(path, "the file name must be <event_name>.v<major>.avsc, snake_case")
    event, major = match["event"], int(match["major"])
    try:
        schema = orjson.loads(entry.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise CatalogError(path, f"not valid JSON ({exc})") from exc
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise CatalogError(path, "the top-level type must be a record")
    namespace = f"id.lintas.{opd}"
    record_name = pascal_case(event)
    if schema.get("name") != record_name or schema.get("namespace") != namespace:
        raise CatalogError(
            path, f"the record must be named {record_name!r} in namespace {namespace!r}"
        )
    if not isinstance(schema.get("doc"), str) or not schema["doc"].strip():
        raise CatalogError(path, "the record needs a doc saying what the event means")
    pii: dict[str, str] = {}
    _check_fields(path, schema, namespace, {}, "", pii, set())
    subject_field = schema.get("subject_field")
    fields_by_name = {f["name"]: f for f in schema["fields"]}
    if not isinstance(subject_field, str) or subject_field not in fields_by_name:
        raise CatalogError(path, "subject_field must name a top-level field")
    if fields_by_name[subject_field]["type"] != "string":
        raise CatalogError(path, f"the subject field {subject_field!r} must be a non-null string")
    try:
        parsed = cast("dict[str, Any]", fastavro.parse_schema(schema))
    except Exception as exc:  # fastavro raises several types; any of them means "invalid"
        raise CatalogError(path, f"fastavro cannot parse it ({exc})") from exc
    topic = f"{TOPIC_PREFIX}{opd}.{event}.v{major}"
    return EventType(
        opd=opd,
        name=event,
        major=major,
        topic=topic,
        subject=f"{topic}-value",
        schema=schema,
        parsed_schema=parsed,
        schema_str=orjson.dumps(schema).decode(),
        full_name=f"{namespace}.{record_name}",
        record_name=record_name,
        subject_field=subject_field,
        pii_fields=MappingProxyType(pii),
        doc=schema["doc"].strip(),
    )


def _check_fields(
    path: str,
    record: dict[str, Any],
    namespace: str | None,
    named: dict[str, dict[str, Any]],
    prefix: str,
    pii: dict[str, str],
    active: set[str],
) -> None:
    """Check the docs and PII tags of a record's fields, collecting ``pii`` paths."""
    record_full_name = full_name(record["name"], namespace)
    named[record_full_name] = record
    if record_full_name in active:
        return  # a recursive type: its fields are being checked further up
    inner_ns = namespace_of(record, namespace)
    fields = record.get("fields")
    if not isinstance(fields, list) or not fields:
        raise CatalogError(path, f"record {record['name']} needs a non-empty fields list")
    active.add(record_full_name)
    for spec in fields:
        name = spec.get("name", "?")
        field_path = f"{prefix}{name}"
        doc = spec.get("doc")
        if not isinstance(doc, str) or not doc.strip():
            raise CatalogError(path, f"field {field_path!r} needs a doc")
        kind = spec.get("pii")
        if kind is not None:
            if kind not in PII_KINDS:
                raise CatalogError(
                    path,
                    f"field {field_path!r} has pii kind {kind!r}; known kinds: "
                    + ", ".join(sorted(PII_KINDS)),
                )
            pii[field_path] = kind
        _check_type(path, spec["type"], inner_ns, named, field_path, pii, active)
    active.discard(record_full_name)


def _check_type(
    path: str,
    schema: Any,
    namespace: str | None,
    named: dict[str, dict[str, Any]],
    field_path: str,
    pii: dict[str, str],
    active: set[str],
) -> None:
    inner = nullable_branch(schema)
    if inner is not None:
        schema = inner
    if isinstance(schema, list):
        for branch in schema:
            _check_type(path, branch, namespace, named, field_path, pii, active)
        return
    if isinstance(schema, str):
        if schema in PRIMITIVES:
            return
        try:
            schema, namespace = resolve(schema, namespace, named)
        except KeyError:
            raise CatalogError(
                path, f"field {field_path!r} uses undefined type {schema!r}"
            ) from None
        if schema.get("type") not in ("record", "error"):
            return  # enums and fixed types have no fields to check
        # A reused record: walk it again so its PII gets this field's path too.
        _check_fields(path, schema, namespace, named, f"{field_path}.", pii, active)
        return
    if not isinstance(schema, dict):
        raise CatalogError(path, f"field {field_path!r} has an invalid type")
    kind = schema.get("type")
    if kind in NAMED:
        named[full_name(schema["name"], namespace)] = schema
        if kind in ("record", "error"):
            _check_fields(path, schema, namespace, named, f"{field_path}.", pii, active)
        return
    if kind == "array":
        _check_type(path, schema.get("items"), namespace, named, f"{field_path}[]", pii, active)
    elif kind == "map":
        _check_type(path, schema.get("values"), namespace, named, f"{field_path}{{}}", pii, active)

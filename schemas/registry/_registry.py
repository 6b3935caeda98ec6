"""The registry's rules: ids, versions, compatibility, soft and permanent deletes, modes.

:class:`Registry` is what the HTTP API calls; it raises the domain errors of
:mod:`lintas.schemas.registry.exceptions` and knows nothing of HTTP. Rules follow
Confluent's Schema Registry:

- a schema id is global: the same schema (by canonical form) under any subject has one id;
- registering a schema the subject already has returns the existing id and version;
- a new version must pass the subject's compatibility level (its own, else the global
  one, else BACKWARD) against the subject's live versions;
- soft delete hides versions (``deleted=true`` shows them); permanent delete needs a soft
  delete first; a schema id disappears when no version points to it any more;
- READONLY refuses writes; IMPORT accepts explicit ids and versions and skips checks, and
  can only be entered on an empty registry unless forced.
"""

from __future__ import annotations

from typing import Final, Literal

from lintas.audit import AuditAction
from lintas.schemas.compatibility import (
    CompatibilityMode,
    CompatibilityResult,
    check_compatibility,
)
from lintas.schemas.exceptions import InvalidSchema

from ._schema import SCHEMA_TYPES, StoredSchema, SubjectVersion, canonical_form, fingerprint
from ._store import GLOBAL, Queries, RegistryStore
from .exceptions import (
    ConfigNotFound,
    IdConflict,
    IncompatibleSchema,
    InvalidCompatibilityLevel,
    InvalidMode,
    InvalidVersion,
    OperationNotPermitted,
    SchemaNotFound,
    SubjectNotFound,
    SubjectNotSoftDeleted,
    SubjectSoftDeleted,
    VersionNotFound,
    VersionNotSoftDeleted,
    VersionSoftDeleted,
)

__all__ = [
    "DEFAULT_COMPATIBILITY",
    "MODES",
    "Registry",
    "VersionRef",
    "parse_level",
    "parse_mode",
    "parse_version",
]

DEFAULT_COMPATIBILITY: Final = CompatibilityMode.BACKWARD
"""Confluent's default level when none is configured."""
MODES: Final = ("READWRITE", "READONLY", "IMPORT")
_MAX_VERSION: Final = 2**31 - 1

VersionRef = int | Literal["latest"]
"""A version number, or the latest version."""


def parse_version(value: str | int) -> VersionRef:
    """Read a version as Confluent accepts it: ``1``..``2^31-1``, ``latest`` or ``-1``.

    Raises:
        InvalidVersion: anything else.
    """
    text = str(value).strip()
    if text.lower() == "latest" or text == "-1":
        return "latest"
    if text.isdigit() and 1 <= int(text) <= _MAX_VERSION:
        return int(text)
    raise InvalidVersion(value)


def parse_level(value: object) -> CompatibilityMode:
    """Read a compatibility level (any case).

    Raises:
        InvalidCompatibilityLevel: not one of Confluent's levels.
    """
    if isinstance(value, str):
        try:
            return CompatibilityMode(value.upper())
        except ValueError:
            pass
    raise InvalidCompatibilityLevel(value)


def parse_mode(value: object) -> str:
    """Read a mode.

    Raises:
        InvalidMode: not READWRITE, READONLY or IMPORT.
    """
    if isinstance(value, str) and value.upper() in MODES:
        return value.upper()
    raise InvalidMode(value)


def _check_type(schema_type: str | None) -> str:
    kind = (schema_type or "AVRO").upper()
    if kind not in SCHEMA_TYPES:
        raise InvalidSchema(
            f"schema type {schema_type!r} is not supported by this registry; "
            f"supported: {', '.join(SCHEMA_TYPES)}"
        )
    return kind


def _validate_avro(text: str) -> None:
    # check_compatibility validates the new schema in every mode, NONE included.
    check_compatibility(text, [], CompatibilityMode.NONE)


def _pick(versions: list[SubjectVersion], subject: str, ref: VersionRef) -> SubjectVersion:
    if ref == "latest":
        return versions[-1]
    for v in versions:
        if v.version == ref:
            return v
    raise VersionNotFound(subject, ref)


class Registry:
    """The schema registry over a :class:`RegistryStore`.

    Schemas read by id are kept in memory (they never change under an id), so
    ``GET /schemas/ids/{id}`` is answered without the database after the first read.
    """

    def __init__(self, store: RegistryStore) -> None:
        self._store = store
        self._by_id: dict[int, StoredSchema] = {}

    async def start(self) -> None:
        """Open the store."""
        await self._store.start()

    async def stop(self) -> None:
        """Close the store."""
        await self._store.stop()

    async def healthy(self) -> bool:
        """Whether the database answers."""
        return await self._store.ping()

    # -- reads ---------------------------------------------------------------------------

    async def schema(self, schema_id: int) -> StoredSchema:
        """The schema under a global id.

        Raises:
            SchemaNotFound: no such id.
        """
        cached = self._by_id.get(schema_id)
        if cached is not None:
            return cached
        async with self._store.read() as q:
            stored = await q.schema(schema_id)
        if stored is None:
            raise SchemaNotFound(schema_id=schema_id)
        self._by_id[schema_id] = stored
        return stored

    async def subjects(self, *, deleted: bool = False) -> list[str]:
        """Subjects with live versions (with ``deleted``, soft-deleted ones too)."""
        async with self._store.read() as q:
            return await q.subjects(include_deleted=deleted)

    async def versions(self, subject: str, *, deleted: bool = False) -> list[int]:
        """Version numbers of a subject.

        Raises:
            SubjectNotFound: the subject has no (visible) version.
        """
        return [v.version for v in await self._visible(subject, deleted=deleted)]

    async def version(
        self, subject: str, ref: VersionRef, *, deleted: bool = False
    ) -> SubjectVersion:
        """One version of a subject.

        Raises:
            SubjectNotFound: the subject has no (visible) version.
            VersionNotFound: it has no such version.
        """
        return _pick(await self._visible(subject, deleted=deleted), subject, ref)

    async def lookup(
        self,
        subject: str,
        schema_text: str,
        *,
        schema_type: str | None = None,
        deleted: bool = False,
    ) -> SubjectVersion:
        """The version of ``subject`` that holds this schema (compared canonically).

        Raises:
            InvalidSchema: the text is not JSON, or the type is not AVRO.
            SubjectNotFound: the subject has no (visible) version.
            SchemaNotFound: the schema is not registered under the subject.
        """
        kind = _check_type(schema_type)
        fp = fingerprint(canonical_form(schema_text))
        for v in await self._visible(subject, deleted=deleted):
            if v.fingerprint == fp and v.schema_type == kind:
                return v
        raise SchemaNotFound(subject=subject)

    async def usages(self, schema_id: int, *, deleted: bool = False) -> list[SubjectVersion]:
        """The subject versions that use a schema id.

        Raises:
            SchemaNotFound: no such id.
        """
        await self.schema(schema_id)
        async with self._store.read() as q:
            found = await q.versions_of_schema(schema_id)
        return [v for v in found if deleted or not v.deleted]

    async def _visible(self, subject: str, *, deleted: bool) -> list[SubjectVersion]:
        async with self._store.read() as q:
            found = await q.versions(subject)
        visible = [v for v in found if deleted or not v.deleted]
        if not visible:
            raise SubjectNotFound(subject)
        return visible

    # -- registration --------------------------------------------------------------------

    async def register(
        self,
        subject: str,
        schema_text: str,
        *,
        schema_type: str | None = None,
        schema_id: int | None = None,
        version: int | None = None,
    ) -> SubjectVersion:
        """Register a schema under a subject; the existing version if it is there already.

        Args:
            subject: the subject (``<topic>-value``).
            schema_text: the schema's JSON text, kept as given for a new id.
            schema_type: only ``AVRO`` (the default) is supported.
            schema_id: the id to use (IMPORT mode only).
            version: the version number to use (IMPORT mode only).

        Raises:
            InvalidSchema: not JSON, not valid Avro, or not AVRO.
            IncompatibleSchema: it breaks the subject's compatibility level.
            OperationNotPermitted: READONLY mode, or an id/version outside IMPORT mode.
            IdConflict: the given id or version is taken by another schema.
        """
        if not subject or subject.strip() != subject:
            raise OperationNotPermitted(f"Invalid subject name {subject!r}")
        kind = _check_type(schema_type)
        fp = fingerprint(canonical_form(schema_text))
        _validate_avro(schema_text)
        explicit = schema_id is not None or version is not None
        if not explicit:
            # Fast path without the write lock: re-registration is the common case (every
            # producer start registers its schema), and must not queue behind writers.
            async with self._store.read() as q:
                self._refuse_writes(subject, await self._mode(q, subject))
                for v in await q.versions(subject):
                    if not v.deleted and v.fingerprint == fp and v.schema_type == kind:
                        return v
        async with self._store.write() as q:
            mode = await self._mode(q, subject)
            self._refuse_writes(subject, mode)
            existing = await q.versions(subject)
            if explicit:
                if mode != "IMPORT":
                    raise OperationNotPermitted(
                        f"Subject '{subject}' is not in IMPORT mode; an explicit id or version "
                        "can only be given in IMPORT mode"
                    )
                return await self._import(
                    q, subject, schema_text, kind, fp, existing, schema_id, version
                )
            live = [v for v in existing if not v.deleted]
            for v in live:
                if v.fingerprint == fp and v.schema_type == kind:
                    return v
            if mode != "IMPORT":
                level = await self._level(q, subject)
                result = check_compatibility(
                    schema_text, [v.text for v in live], level, versions=[v.version for v in live]
                )
                if not result.is_compatible:
                    raise IncompatibleSchema(subject, result.messages)
            ids = await q.schema_ids(fp, kind)
            new_id = ids[0] if ids else await q.insert_schema(schema_text, kind, fp)
            number = max((v.version for v in existing), default=0) + 1
            await q.insert_version(subject, number, new_id)
            await q.audit(AuditAction.SCHEMA_REGISTERED, subject, {"version": number, "id": new_id})
            text = schema_text if not ids else (await self._schema_in(q, new_id)).text
            return SubjectVersion(subject, number, new_id, text, kind, fp)

    async def _import(
        self,
        q: Queries,
        subject: str,
        text: str,
        kind: str,
        fp: str,
        existing: list[SubjectVersion],
        schema_id: int | None,
        version: int | None,
    ) -> SubjectVersion:
        if schema_id is not None and schema_id < 1:
            raise IdConflict(f"Invalid schema id {schema_id}: ids are positive")
        stored = await q.schema(schema_id) if schema_id is not None else None
        if stored is not None and (stored.fingerprint != fp or stored.schema_type != kind):
            raise IdConflict(
                f"Schema id {schema_id} is already taken by another schema; overwriting it is "
                "not permitted"
            )
        if version is not None:
            for v in existing:
                if v.version != version:
                    continue
                if (schema_id is None or v.schema_id == schema_id) and v.fingerprint == fp:
                    return v  # the same import run twice
                raise IdConflict(
                    f"Version {version} of subject '{subject}' is already registered with "
                    f"schema id {v.schema_id}"
                )
        if schema_id is None:
            ids = await q.schema_ids(fp, kind)
            schema_id = ids[0] if ids else await q.insert_schema(text, kind, fp)
        elif stored is None:
            await q.insert_schema(text, kind, fp, schema_id=schema_id)
        number = version or max((v.version for v in existing), default=0) + 1
        await q.insert_version(subject, number, schema_id)
        details = {"version": number, "id": schema_id, "mode": "IMPORT"}
        await q.audit(AuditAction.SCHEMA_REGISTERED, subject, details)
        return SubjectVersion(subject, number, schema_id, stored.text if stored else text, kind, fp)

    async def _schema_in(self, q: Queries, schema_id: int) -> StoredSchema:
        stored = self._by_id.get(schema_id) or await q.schema(schema_id)
        if stored is None:  # cannot happen inside the write lock; say so if it does
            raise SchemaNotFound(schema_id=schema_id)
        return stored

    # -- compatibility -------------------------------------------------------------------

    async def check(
        self,
        subject: str,
        schema_text: str,
        ref: VersionRef | None = None,
        *,
        schema_type: str | None = None,
    ) -> CompatibilityResult:
        """Check a schema against a subject without registering it.

        Args:
            ref: one version (or ``latest``) to check against with the subject's level's
                direction; ``None`` checks against the versions the level names (all of
                them for the transitive levels).

        Raises:
            InvalidSchema: the schema is not valid Avro.
            SubjectNotFound: a version was named but the subject has none.
            VersionNotFound: the named version does not exist.
        """
        _check_type(schema_type)
        canonical_form(schema_text)
        async with self._store.read() as q:
            level = await self._level(q, subject)
            live = [v for v in await q.versions(subject) if not v.deleted]
        if isinstance(ref, int) and not live:
            raise SubjectNotFound(subject)
        against = live if ref is None else ([_pick(live, subject, ref)] if live else [])
        return check_compatibility(
            schema_text, [v.text for v in against], level, versions=[v.version for v in against]
        )

    # -- deletes -------------------------------------------------------------------------

    async def delete_subject(self, subject: str, *, permanent: bool = False) -> list[int]:
        """Soft-delete a subject's live versions, or permanently delete soft-deleted ones.

        Returns:
            The version numbers deleted.

        Raises:
            SubjectNotFound: no version at all.
            SubjectSoftDeleted: soft delete of an already soft-deleted subject.
            SubjectNotSoftDeleted: permanent delete while versions are live.
        """
        async with self._store.write() as q:
            self._refuse_writes(subject, await self._mode(q, subject))
            existing = await q.versions(subject)
            if not existing:
                raise SubjectNotFound(subject)
            live = [v.version for v in existing if not v.deleted]
            if not permanent:
                if not live:
                    raise SubjectSoftDeleted(subject)
                await q.soft_delete(subject, live)
                await q.audit(AuditAction.SCHEMA_DELETED, subject, {"versions": live})
                return live
            if live:
                raise SubjectNotSoftDeleted(subject)
            numbers = [v.version for v in existing]
            await q.hard_delete(subject, numbers)
            details = {"versions": numbers, "permanent": True}
            await q.audit(AuditAction.SCHEMA_DELETED, subject, details)
            self._forget(await q.drop_unused_schemas([v.schema_id for v in existing]))
            await q.set_config(subject, "compatibility", None)
            await q.set_config(subject, "mode", None)
            return numbers

    async def delete_version(
        self, subject: str, ref: VersionRef, *, permanent: bool = False
    ) -> int:
        """Soft-delete one version, or permanently delete a soft-deleted one.

        Raises:
            SubjectNotFound: the subject has no version.
            VersionNotFound: no such version.
            VersionSoftDeleted: soft delete of an already soft-deleted version.
            VersionNotSoftDeleted: permanent delete of a live version.
        """
        async with self._store.write() as q:
            self._refuse_writes(subject, await self._mode(q, subject))
            existing = await q.versions(subject)
            candidates = existing if permanent else [v for v in existing if not v.deleted]
            if not existing or (ref == "latest" and not candidates):
                raise SubjectNotFound(subject)
            target = _pick(candidates if ref == "latest" else existing, subject, ref)
            if not permanent:
                if target.deleted:
                    raise VersionSoftDeleted(subject, target.version)
                await q.soft_delete(subject, [target.version])
                await q.audit(AuditAction.SCHEMA_DELETED, subject, {"versions": [target.version]})
                return target.version
            if not target.deleted:
                raise VersionNotSoftDeleted(subject, target.version)
            await q.hard_delete(subject, [target.version])
            details = {"versions": [target.version], "permanent": True}
            await q.audit(AuditAction.SCHEMA_DELETED, subject, details)
            self._forget(await q.drop_unused_schemas([target.schema_id]))
            return target.version

    def _forget(self, schema_ids: list[int]) -> None:
        for schema_id in schema_ids:
            self._by_id.pop(schema_id, None)

    # -- config and mode -----------------------------------------------------------------

    async def compatibility(
        self, subject: str | None = None, *, default_to_global: bool = False
    ) -> CompatibilityMode:
        """The level of a subject (or the global one).

        Raises:
            ConfigNotFound: the subject has no level of its own and ``default_to_global``
                is false.
        """
        async with self._store.read() as q:
            if subject is None:
                return await self._level(q, None)
            own, _ = await q.config(subject)
            if own is not None:
                return CompatibilityMode(own)
            if not default_to_global:
                raise ConfigNotFound(subject, "compatibility")
            return await self._level(q, None)

    async def set_compatibility(
        self, level: object, subject: str | None = None
    ) -> CompatibilityMode:
        """Set the global level, or a subject's.

        Raises:
            InvalidCompatibilityLevel: not a level.
        """
        mode = parse_level(level)
        async with self._store.write() as q:
            await q.set_config(subject or GLOBAL, "compatibility", mode.value)
        return mode

    async def delete_compatibility(self, subject: str | None = None) -> CompatibilityMode:
        """Remove a subject's level (or reset the global one); returns the level removed.

        Raises:
            ConfigNotFound: the subject had no level of its own.
        """
        async with self._store.write() as q:
            own, _ = await q.config(subject or GLOBAL)
            if own is None and subject is not None:
                raise ConfigNotFound(subject, "compatibility")
            await q.set_config(subject or GLOBAL, "compatibility", None)
        return CompatibilityMode(own) if own else DEFAULT_COMPATIBILITY

    async def mode(self, subject: str | None = None, *, default_to_global: bool = False) -> str:
        """The mode of a subject (or the global one).

        Raises:
            ConfigNotFound: the subject has no mode of its own and ``default_to_global``
                is false.
        """
        async with self._store.read() as q:
            if subject is None:
                return await self._mode(q, None)
            _, own = await q.config(subject)
            if own is not None:
                return own
            if not default_to_global:
                raise ConfigNotFound(subject, "mode")
            return await self._mode(q, None)

    async def set_mode(
        self, mode: object, subject: str | None = None, *, force: bool = False
    ) -> str:
        """Set the global mode, or a subject's.

        Raises:
            InvalidMode: not a mode.
            OperationNotPermitted: IMPORT on a registry (or subject) that holds schemas,
                without ``force``.
        """
        value = parse_mode(mode)
        async with self._store.write() as q:
            if value == "IMPORT" and not force:
                busy = (
                    bool(await q.versions(subject))
                    if subject
                    else bool(await q.subjects(include_deleted=True))
                )
                if busy:
                    raise OperationNotPermitted(
                        "Cannot import since found existing subjects; import into an empty "
                        "registry, or set force=true"
                    )
            await q.set_config(subject or GLOBAL, "mode", value)
        return value

    async def delete_mode(self, subject: str) -> str:
        """Remove a subject's own mode; returns the mode removed.

        Raises:
            ConfigNotFound: the subject had no mode of its own.
        """
        async with self._store.write() as q:
            _, own = await q.config(subject)
            if own is None:
                raise ConfigNotFound(subject, "mode")
            await q.set_config(subject, "mode", None)
        return own

    async def export_config(self) -> dict[str, tuple[str | None, str | None]]:
        """Every (compatibility, mode) set, keyed by subject (``""`` for the global one)."""
        async with self._store.read() as q:
            return await q.all_config()

    @staticmethod
    async def _level(q: Queries, subject: str | None) -> CompatibilityMode:
        if subject is not None:
            own, _ = await q.config(subject)
            if own is not None:
                return CompatibilityMode(own)
        level, _ = await q.config(GLOBAL)
        return CompatibilityMode(level) if level else DEFAULT_COMPATIBILITY

    @staticmethod
    async def _mode(q: Queries, subject: str | None) -> str:
        if subject is not None:
            _, own = await q.config(subject)
            if own is not None:
                return own
        _, mode = await q.config(GLOBAL)
        return mode or "READWRITE"

    @staticmethod
    def _refuse_writes(subject: str, mode: str) -> None:
        if mode == "READONLY":
            raise OperationNotPermitted(f"Subject '{subject}' is in read-only mode")

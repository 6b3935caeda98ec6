"""An async client of any Confluent-compatible schema registry (Lintas's own included).

Usage::

    async with SchemaRegistryClient("http://127.0.0.1:8081") as registry:
        schema_id = await registry.register("opd.dukcapil.kematian_dicatat.v1-value", text)
        serializer = AvroSerializer(registry)          # it is a SchemaResolver

Schemas by id and ids by (subject, schema) are cached in the client's memory for its
life (keep one client per process): an id never changes its schema, so the registry is
asked once per id. Errors come back as the registry's own exception classes
(:class:`SubjectNotFound`, :class:`IncompatibleSchema`, ...); a registry that cannot be
reached raises :class:`RegistryUnavailable` (retriable).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from ._api import V1_JSON
from ._errors import error_from_body
from .exceptions import RegistryUnavailable

__all__ = ["CompatibilityCheck", "RegisteredSchema", "SchemaRegistryClient"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredSchema:
    """A schema as registered under a subject version."""

    subject: str
    version: int
    schema_id: int
    schema: str
    schema_type: str = "AVRO"


@dataclass(frozen=True, slots=True)
class CompatibilityCheck:
    """The registry's answer to a compatibility check.

    Attributes:
        is_compatible: whether the schema may be registered.
        messages: why not, one per incompatibility (asked with ``verbose=True``).
    """

    is_compatible: bool
    messages: list[str] = field(default_factory=list)


@dataclass
class _Cache:
    schemas: dict[int, str] = field(default_factory=dict)
    ids: dict[tuple[str, str], int] = field(default_factory=dict)


def _seg(value: str) -> str:
    return quote(value, safe="")


class SchemaRegistryClient:
    """Async client of the Confluent Schema Registry REST API.

    Implements :class:`lintas.schemas.SchemaResolver` (``get_schema``, ``register``,
    ``lookup``), so the serde can use it directly.

    Args:
        url: the registry's base URL (``http://127.0.0.1:8081``).
        timeout: seconds per request.
        transport: an httpx transport (tests pass ``httpx.ASGITransport``).
        headers: extra headers (authentication in front of the registry, say).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._cache = _Cache()
        self._http = httpx.AsyncClient(
            base_url=self.url,
            timeout=timeout,
            transport=transport,
            headers={"Accept": V1_JSON, "Content-Type": V1_JSON, **(headers or {})},
        )

    # -- lifecycle -----------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the connections (idempotent)."""
        await self._http.aclose()

    async def __aenter__(self) -> SchemaRegistryClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        http = getattr(self, "_http", None)
        if http is not None and not http.is_closed:
            warnings.warn(
                f"SchemaRegistryClient({self.url!r}) was not closed; use `async with` or "
                "`await client.aclose()`",
                ResourceWarning,
                stacklevel=2,
            )

    # -- transport -----------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        subject: str | None = None,
        version: int | str | None = None,
        schema_id: int | None = None,
    ) -> Any:
        try:
            response = await self._http.request(
                method,
                path,
                content=orjson.dumps(body) if body is not None else None,
                params=params,
            )
        except httpx.TransportError as exc:
            raise RegistryUnavailable(self.url, f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise error_from_body(
                response.status_code,
                response.content,
                subject=subject,
                version=version,
                schema_id=schema_id,
            )
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise RegistryUnavailable(self.url, "the answer is not JSON") from exc

    @staticmethod
    def _registered(doc: dict[str, Any]) -> RegisteredSchema:
        return RegisteredSchema(
            subject=doc["subject"],
            version=int(doc["version"]),
            schema_id=int(doc["id"]),
            schema=doc["schema"],
            schema_type=doc.get("schemaType", "AVRO"),
        )

    # -- the SchemaResolver protocol -----------------------------------------------------

    async def get_schema(self, schema_id: int) -> str:
        """The schema text registered under a global id (cached).

        Raises:
            SchemaNotFound: no such id (a :class:`LookupError`, as the serde expects).
            RegistryUnavailable: the registry cannot be reached.
        """
        cached = self._cache.schemas.get(schema_id)
        if cached is not None:
            return cached
        doc = await self._call("GET", f"/schemas/ids/{schema_id}", schema_id=schema_id)
        text = str(doc["schema"])
        self._cache.schemas[schema_id] = text
        return text

    async def register(self, subject: str, schema: str, *, schema_type: str = "AVRO") -> int:
        """Register a schema under a subject; its id (the existing one if registered).

        Raises:
            IncompatibleSchema: it breaks the subject's compatibility level.
            InvalidSchema: not valid Avro.
            OperationNotPermitted: the registry is read-only.
        """
        key = (subject, schema)
        cached = self._cache.ids.get(key)
        if cached is not None:
            return cached
        registered = await self.register_version(subject, schema, schema_type=schema_type)
        return registered.schema_id

    async def lookup(self, subject: str, schema: str) -> int:
        """The id of a schema already registered under a subject (cached).

        Raises:
            SubjectNotFound: the subject has no version.
            SchemaNotFound: the schema is not registered under it.
        """
        cached = self._cache.ids.get((subject, schema))
        if cached is not None:
            return cached
        return (await self.lookup_version(subject, schema)).schema_id

    # -- subjects and versions -----------------------------------------------------------

    async def register_version(
        self,
        subject: str,
        schema: str,
        *,
        schema_type: str = "AVRO",
        schema_id: int | None = None,
        version: int | None = None,
    ) -> RegisteredSchema:
        """Register a schema and return the full registration.

        Args:
            schema_id, version: explicit id and version; the registry must be in IMPORT
                mode (this is how backups are restored).

        Raises:
            IncompatibleSchema, InvalidSchema, OperationNotPermitted, IdConflict.
        """
        body: dict[str, Any] = {"schema": schema}
        if schema_type != "AVRO":
            body["schemaType"] = schema_type
        if schema_id is not None:
            body["id"] = schema_id
        if version is not None:
            body["version"] = version
        doc = await self._call(
            "POST", f"/subjects/{_seg(subject)}/versions", body=body, subject=subject
        )
        registered = self._registered({"subject": subject, "schema": schema, **doc})
        self._cache.ids[(subject, schema)] = registered.schema_id
        self._cache.schemas.setdefault(registered.schema_id, registered.schema)
        return registered

    async def lookup_version(
        self, subject: str, schema: str, *, deleted: bool = False
    ) -> RegisteredSchema:
        """The subject version holding a schema.

        Raises:
            SubjectNotFound: the subject has no version.
            SchemaNotFound: the schema is not registered under it.
        """
        doc = await self._call(
            "POST",
            f"/subjects/{_seg(subject)}",
            body={"schema": schema},
            params={"deleted": str(deleted).lower()},
            subject=subject,
        )
        registered = self._registered(doc)
        self._cache.ids[(subject, schema)] = registered.schema_id
        return registered

    async def get_subjects(self, *, deleted: bool = False) -> list[str]:
        """Every subject (with ``deleted``, soft-deleted ones too)."""
        return list(await self._call("GET", "/subjects", params={"deleted": str(deleted).lower()}))

    async def get_versions(self, subject: str, *, deleted: bool = False) -> list[int]:
        """A subject's version numbers.

        Raises:
            SubjectNotFound: it has none.
        """
        return list(
            await self._call(
                "GET",
                f"/subjects/{_seg(subject)}/versions",
                params={"deleted": str(deleted).lower()},
                subject=subject,
            )
        )

    async def get_version(
        self, subject: str, version: int | str = "latest", *, deleted: bool = False
    ) -> RegisteredSchema:
        """One version of a subject (``"latest"`` by default).

        Raises:
            SubjectNotFound, VersionNotFound, InvalidVersion.
        """
        doc = await self._call(
            "GET",
            f"/subjects/{_seg(subject)}/versions/{version}",
            params={"deleted": str(deleted).lower()},
            subject=subject,
            version=version,
        )
        return self._registered(doc)

    async def get_latest_version(self, subject: str) -> RegisteredSchema:
        """The latest live version of a subject."""
        return await self.get_version(subject, "latest")

    async def delete_subject(self, subject: str, *, permanent: bool = False) -> list[int]:
        """Soft-delete a subject (``permanent`` after a soft delete removes it).

        Returns:
            The versions deleted.
        """
        deleted = await self._call(
            "DELETE",
            f"/subjects/{_seg(subject)}",
            params={"permanent": str(permanent).lower()},
            subject=subject,
        )
        for key in [k for k in self._cache.ids if k[0] == subject]:
            del self._cache.ids[key]
        return list(deleted)

    async def delete_version(
        self, subject: str, version: int | str, *, permanent: bool = False
    ) -> int:
        """Soft-delete one version (``permanent`` after a soft delete removes it)."""
        deleted = await self._call(
            "DELETE",
            f"/subjects/{_seg(subject)}/versions/{version}",
            params={"permanent": str(permanent).lower()},
            subject=subject,
            version=version,
        )
        for key in [k for k in self._cache.ids if k[0] == subject]:
            del self._cache.ids[key]
        return int(deleted)

    async def subjects_of(self, schema_id: int, *, deleted: bool = False) -> list[str]:
        """The subjects that use a schema id."""
        return list(
            await self._call(
                "GET",
                f"/schemas/ids/{schema_id}/subjects",
                params={"deleted": str(deleted).lower()},
                schema_id=schema_id,
            )
        )

    async def versions_of(self, schema_id: int, *, deleted: bool = False) -> list[tuple[str, int]]:
        """The (subject, version) pairs that use a schema id."""
        docs = await self._call(
            "GET",
            f"/schemas/ids/{schema_id}/versions",
            params={"deleted": str(deleted).lower()},
            schema_id=schema_id,
        )
        return [(d["subject"], int(d["version"])) for d in docs]

    async def get_schema_types(self) -> list[str]:
        """The schema types the registry accepts."""
        return list(await self._call("GET", "/schemas/types"))

    # -- compatibility, config, mode ----------------------------------------------------

    async def test_compatibility(
        self,
        subject: str,
        schema: str,
        version: int | str | None = "latest",
        *,
        verbose: bool = True,
    ) -> CompatibilityCheck:
        """Check a schema against a subject's version (or all versions with ``None``)."""
        path = f"/compatibility/subjects/{_seg(subject)}/versions"
        if version is not None:
            path += f"/{version}"
        doc = await self._call(
            "POST",
            path,
            body={"schema": schema},
            params={"verbose": str(verbose).lower()},
            subject=subject,
            version=version,
        )
        return CompatibilityCheck(bool(doc["is_compatible"]), list(doc.get("messages") or []))

    async def get_compatibility(
        self, subject: str | None = None, *, default_to_global: bool = False
    ) -> str:
        """The compatibility level of a subject, or the global one.

        Raises:
            ConfigNotFound: the subject has no level of its own (and not
                ``default_to_global``).
        """
        path = "/config" if subject is None else f"/config/{_seg(subject)}"
        doc = await self._call(
            "GET",
            path,
            params={"defaultToGlobal": str(default_to_global).lower()},
            subject=subject,
        )
        return str(doc["compatibilityLevel"])

    async def set_compatibility(self, level: str, subject: str | None = None) -> str:
        """Set the compatibility level of a subject, or the global one.

        Raises:
            InvalidCompatibilityLevel: no such level.
        """
        path = "/config" if subject is None else f"/config/{_seg(subject)}"
        doc = await self._call("PUT", path, body={"compatibility": level}, subject=subject)
        return str(doc["compatibility"])

    async def delete_compatibility(self, subject: str | None = None) -> str:
        """Remove a subject's level (or reset the global one); the level it had."""
        path = "/config" if subject is None else f"/config/{_seg(subject)}"
        doc = await self._call("DELETE", path, subject=subject)
        return str(doc["compatibilityLevel"])

    async def get_mode(self, subject: str | None = None) -> str:
        """READWRITE, READONLY or IMPORT, of a subject (falling back to global) or global."""
        path = "/mode" if subject is None else f"/mode/{_seg(subject)}"
        doc = await self._call("GET", path, params={"defaultToGlobal": "true"}, subject=subject)
        return str(doc["mode"])

    async def set_mode(self, mode: str, subject: str | None = None, *, force: bool = False) -> str:
        """Set the mode of a subject, or the global one.

        Raises:
            InvalidMode: no such mode.
            OperationNotPermitted: IMPORT into a non-empty registry without ``force``.
        """
        path = "/mode" if subject is None else f"/mode/{_seg(subject)}"
        doc = await self._call(
            "PUT",
            path,
            body={"mode": mode},
            params={"force": str(force).lower()},
            subject=subject,
        )
        return str(doc["mode"])

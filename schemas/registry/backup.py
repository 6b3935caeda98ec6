"""Back up a registry to one JSON document and restore it with the same ids.

``export_registry`` reads everything through the REST API (so it works against any
Confluent-compatible registry); ``import_registry`` writes it back through IMPORT mode,
as Confluent's own migration does: explicit ids and versions, no compatibility checks.
Soft-deleted versions are exported too and soft-deleted again after the import, so a
restored registry decodes every message its source could.

Document (``format_version`` 1)::

    {"format": "lintas-schema-registry-backup", "format_version": 1,
     "compatibility": "BACKWARD", "mode": "READWRITE",
     "subjects": [{"subject": "...", "compatibility": "FULL" | null,
                   "versions": [{"version": 1, "id": 7, "schemaType": "AVRO",
                                 "schema": "...", "deleted": false}]}]}
"""

from __future__ import annotations

from typing import Any

from .client import SchemaRegistryClient
from .exceptions import ConfigNotFound, OperationNotPermitted, RegistryError, SubjectNotFound

__all__ = ["BACKUP_FORMAT", "export_registry", "import_registry"]

BACKUP_FORMAT = "lintas-schema-registry-backup"
_FORMAT_VERSION = 1


async def export_registry(client: SchemaRegistryClient) -> dict[str, Any]:
    """Read every subject, version, schema id and config of a registry.

    Returns:
        A JSON-ready document (see the module docstring).
    """
    subjects: list[dict[str, Any]] = []
    for subject in await client.get_subjects(deleted=True):
        try:
            live = set(await client.get_versions(subject))
        except SubjectNotFound:  # every version is soft-deleted
            live = set()
        versions = []
        for number in await client.get_versions(subject, deleted=True):
            found = await client.get_version(subject, number, deleted=True)
            versions.append(
                {
                    "version": found.version,
                    "id": found.schema_id,
                    "schemaType": found.schema_type,
                    "schema": found.schema,
                    "deleted": number not in live,
                }
            )
        try:
            level: str | None = await client.get_compatibility(subject)
        except ConfigNotFound:
            level = None
        subjects.append({"subject": subject, "compatibility": level, "versions": versions})
    return {
        "format": BACKUP_FORMAT,
        "format_version": _FORMAT_VERSION,
        "compatibility": await client.get_compatibility(),
        "mode": await client.get_mode(),
        "subjects": subjects,
    }


async def import_registry(client: SchemaRegistryClient, doc: dict[str, Any]) -> dict[str, int]:
    """Restore a document from :func:`export_registry` into an empty registry.

    The registry is put into IMPORT mode for the duration and then into the document's
    mode (READWRITE when it has none).

    Returns:
        Counts: ``subjects``, ``versions`` and ``schemas`` (distinct ids) restored.

    Raises:
        RegistryError: the document is not a backup of this format.
        OperationNotPermitted: the registry is not empty.
        IdConflict: an id or version is taken (the registry was not empty after all).
    """
    if doc.get("format") != BACKUP_FORMAT or doc.get("format_version") != _FORMAT_VERSION:
        raise RegistryError(
            "This is not a Lintas schema registry backup (format version 1).",
            hint="Create one with `lintas schemas export`.",
        )
    if await client.get_subjects(deleted=True):
        raise OperationNotPermitted("Cannot import into a registry that already has subjects")
    await client.set_mode("IMPORT")
    ids: set[int] = set()
    versions = 0
    try:
        for entry in doc["subjects"]:
            subject = entry["subject"]
            for v in sorted(entry["versions"], key=lambda item: int(item["version"])):
                await client.register_version(
                    subject,
                    v["schema"],
                    schema_type=v.get("schemaType", "AVRO"),
                    schema_id=int(v["id"]),
                    version=int(v["version"]),
                )
                ids.add(int(v["id"]))
                versions += 1
            for v in entry["versions"]:
                if v.get("deleted"):
                    await client.delete_version(subject, int(v["version"]))
            if entry.get("compatibility"):
                await client.set_compatibility(entry["compatibility"], subject)
        await client.set_compatibility(doc.get("compatibility") or "BACKWARD")
    finally:
        # Never leave the registry in IMPORT mode: it would skip compatibility checks.
        mode = str(doc.get("mode") or "READWRITE")
        await client.set_mode("READWRITE" if mode == "IMPORT" else mode)
    return {"subjects": len(doc["subjects"]), "versions": versions, "schemas": len(ids)}

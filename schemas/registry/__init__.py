"""The Lintas schema registry: Confluent's Schema Registry REST API on PostgreSQL.

Any Confluent client works against it unchanged; :class:`SchemaRegistryClient` is Lintas's
own async client (and the serde's :class:`~lintas.schemas.SchemaResolver`)::

    from lintas.schemas.registry import SchemaRegistryClient

    async with SchemaRegistryClient("http://127.0.0.1:8081") as registry:
        schema_id = await registry.register(event_type.subject, event_type.schema_str)

Serve it with ``lintas registry`` (``lintas up`` does), or :func:`create_app` under any
ASGI server, or :class:`RegistryServer` inside a running event loop. See
``docs/registry.md`` for the API, the error codes and backup/restore.
"""

from ._api import MAX_BODY_BYTES
from ._service import RegistryServer, create_app, serve
from .backup import export_registry, import_registry
from .client import CompatibilityCheck, RegisteredSchema, SchemaRegistryClient
from .exceptions import (
    ConfigNotFound,
    IdConflict,
    IncompatibleSchema,
    InvalidCompatibilityLevel,
    InvalidMode,
    InvalidSchema,
    InvalidVersion,
    OperationNotPermitted,
    RegistryError,
    RegistryUnavailable,
    SchemaNotFound,
    SchemaRegistryError,
    SubjectNotFound,
    SubjectNotSoftDeleted,
    SubjectSoftDeleted,
    VersionNotFound,
    VersionNotSoftDeleted,
    VersionSoftDeleted,
)

__all__ = [  # grouped by concern, as in aiokafka/__init__.py
    # client
    "CompatibilityCheck",
    "RegisteredSchema",
    "SchemaRegistryClient",
    # server
    "MAX_BODY_BYTES",
    "RegistryServer",
    "create_app",
    "serve",
    # backup
    "export_registry",
    "import_registry",
    # errors
    "ConfigNotFound",
    "IdConflict",
    "IncompatibleSchema",
    "InvalidCompatibilityLevel",
    "InvalidMode",
    "InvalidSchema",
    "InvalidVersion",
    "OperationNotPermitted",
    "RegistryError",
    "RegistryUnavailable",
    "SchemaNotFound",
    "SchemaRegistryError",
    "SubjectNotFound",
    "SubjectNotSoftDeleted",
    "SubjectSoftDeleted",
    "VersionNotFound",
    "VersionNotSoftDeleted",
    "VersionSoftDeleted",
]

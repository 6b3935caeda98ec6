"""The merged store: the raw table of every canonical event and one typed table per type.

::

    from lintas.consumers.store import shape_of, plan_evolution, prepare_store

:mod:`.ddl` derives typed tables from Avro schemas and plans their evolution, :mod:`.rows`
turns canonical records into rows, :mod:`.tables` applies DDL, :mod:`.prepare` creates
what the catalog implies, :mod:`.retention` removes personal data past its retention. The
sink that writes it is :mod:`lintas.consumers.sinks`.
"""

from .connection import connect_store, is_data_error, is_transient
from .ddl import (
    ENVELOPE_COLUMNS,
    STORE_SCHEMA,
    Column,
    Evolution,
    ExistingColumn,
    TableShape,
    ValueKind,
    alter_table_sql,
    create_table_sql,
    plan_evolution,
    shape_of,
    table_name,
)
from .exceptions import (
    CanonicalRecordInvalid,
    RetentionInvalid,
    SchemaConflict,
    StoreError,
    StoreUnavailable,
)
from .prepare import catalog_shape, prepare_store
from .retention import (
    RetentionReport,
    TypePolicy,
    TypeResult,
    run_retention,
    run_retention_periodically,
    store_policy,
)
from .rows import PAYLOAD_FIELD, RAW_COLUMNS, json_bytes, nik_values, raw_row, typed_row
from .tables import ensure_table, read_columns

__all__ = [
    # typed tables
    "ENVELOPE_COLUMNS",
    "STORE_SCHEMA",
    "Column",
    "Evolution",
    "ExistingColumn",
    "TableShape",
    "ValueKind",
    "alter_table_sql",
    "catalog_shape",
    "create_table_sql",
    "ensure_table",
    "plan_evolution",
    "prepare_store",
    "read_columns",
    "shape_of",
    "table_name",
    # rows
    "PAYLOAD_FIELD",
    "RAW_COLUMNS",
    "json_bytes",
    "nik_values",
    "raw_row",
    "typed_row",
    # retention
    "RetentionReport",
    "TypePolicy",
    "TypeResult",
    "run_retention",
    "run_retention_periodically",
    "store_policy",
    # connections
    "connect_store",
    "is_data_error",
    "is_transient",
    # errors
    "CanonicalRecordInvalid",
    "RetentionInvalid",
    "SchemaConflict",
    "StoreError",
    "StoreUnavailable",
]

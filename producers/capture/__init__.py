"""Capture adapters: bring legacy applications onto the platform without touching them.

A capture source reads an OPD application's database (SIMDA, SIMPEG, a vendor's licensing
system) and publishes its changes as catalog events through the producer SDK, so they get
validation, CloudEvents headers and the spool. Four mechanisms:

    polling    SELECT by an increasing key or updated_at (read-only access; any database)
    binlog     MariaDB/MySQL row-based binary log (a replication login)
    logical    PostgreSQL logical decoding through a pgoutput slot (a REPLICATION role)
    outbox     a transactional outbox table the application writes its events to

Usage::

    from lintas.producers.capture import load_source, run_sources

    await run_sources([load_source(Path("capture/simda.yaml"))], settings)

``lintas capture run|check|status|reset|outbox-ddl`` is the command line; see
``docs/capture.md`` for choosing a mechanism, the privileges each needs and mapping files.
"""

from .base import CaptureSource, SourceStats
from .binlog import BinlogPosition, BinlogSource
from .config import SourceConfig, TableConfig, load_source
from .deadletter import DeadLetterWriter, DeadRow, dead_row_record
from .exceptions import (
    CaptureError,
    ConfigInvalid,
    DeadLetterFailed,
    MappingInvalid,
    PositionLost,
    SourceMisconfigured,
    SourceUnavailable,
    StateLocked,
)
from .mapping import EventRule, TableMapping, load_mapping
from .outbox import OutboxRelay, outbox_ddl
from .pglogical import LogicalSource, SlotLag, slot_lag
from .polling import PollingSource
from .publisher import Outcome, Publisher
from .runner import CaptureRunner, run_sources, state_dir
from .state import CaptureState, ChunkMark
from .status import source_status
from .types import Change, Mechanism, Op, stable_event_id

# Grouped by concern, as in aiokafka/__init__.py.
__all__ = [
    # running
    "CaptureRunner",
    "run_sources",
    "source_status",
    "state_dir",
    # configuration
    "SourceConfig",
    "TableConfig",
    "load_source",
    "EventRule",
    "TableMapping",
    "load_mapping",
    # mechanisms
    "BinlogPosition",
    "BinlogSource",
    "CaptureSource",
    "LogicalSource",
    "OutboxRelay",
    "PollingSource",
    "SlotLag",
    "SourceStats",
    "outbox_ddl",
    "slot_lag",
    # values
    "Change",
    "Mechanism",
    "Op",
    "Outcome",
    "stable_event_id",
    # plumbing
    "CaptureState",
    "ChunkMark",
    "DeadLetterWriter",
    "DeadRow",
    "Publisher",
    "dead_row_record",
    # errors
    "CaptureError",
    "ConfigInvalid",
    "DeadLetterFailed",
    "MappingInvalid",
    "PositionLost",
    "SourceMisconfigured",
    "SourceUnavailable",
    "StateLocked",
]

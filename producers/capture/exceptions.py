"""Errors raised by the capture adapters.

Tree (this component's part of :mod:`lintas.exceptions`)::

    LintasError
    └── CaptureError                 a capture source cannot go on as configured
        ├── ConfigInvalid            a source file breaks a rule (file, line, reason)
        │   └── MappingInvalid       a mapping names an unknown column, field, type or transform
        ├── SourceMisconfigured      the database lacks a setting or privilege the mechanism needs
        ├── PositionLost             the stored binlog position or slot no longer exists
        ├── SourceUnavailable        the database cannot be reached now (retriable)
        ├── DeadLetterFailed         a dead letter could not be written to Kafka (retriable)
        └── StateLocked              another process captures this source

The runner retries what is ``retriable`` with backoff and stops on the rest, printing the
message and the hint (what to change, and where).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from lintas.exceptions import LintasError

__all__ = [
    "CaptureError",
    "ConfigInvalid",
    "DeadLetterFailed",
    "MappingInvalid",
    "PositionLost",
    "SourceMisconfigured",
    "SourceUnavailable",
    "StateLocked",
]


class CaptureError(LintasError):
    """Base class for the errors of :mod:`lintas.producers.capture`."""


class ConfigInvalid(CaptureError):
    """A source or mapping file breaks a rule; refused at start-up.

    Attributes:
        path: the file.
        line: 1-based line of the offending entry, when known.
        reason: the rule in words.
    """

    def __init__(self, path: Path | str, line: int | None, reason: str) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(
            f"{where}: {reason}.",
            hint="Fix the file and start again; docs/capture.md describes every key.",
        )
        self.path = str(path)
        self.line = line
        self.reason = reason


class MappingInvalid(ConfigInvalid):
    """A mapping names an unknown column, event type, field or transform."""


class SourceMisconfigured(CaptureError):
    """The source database lacks settings or privileges the capture mechanism needs.

    Attributes:
        source: the capture source's name.
        problems: what is wrong, one entry per setting, each saying what to change.
    """

    def __init__(self, source: str, mechanism: str, problems: list[str]) -> None:
        listed = "; ".join(problems)
        super().__init__(
            f"Source {source} cannot be captured with {mechanism}: {listed}.",
            hint="Change these settings on the database (docs/capture.md, 'Preparing the "
            "database'), or choose another mechanism such as polling.",
        )
        self.source = source
        self.mechanism = mechanism
        self.problems = problems


class PositionLost(CaptureError):
    """The stored position cannot be resumed from: the binlog file was purged, or the
    replication slot was dropped or invalidated.

    Changes made while the position was unavailable cannot be read any more; the source
    must be snapshotted again.

    Attributes:
        source: the capture source's name.
        position: the stored position (``mariadb-bin.000003:1234`` or the slot name).
        reason: what the database said.
    """

    def __init__(self, source: str, position: str, reason: str, *, config: str = "SOURCE") -> None:
        super().__init__(
            f"Source {source} cannot resume from {position}: {reason}.",
            hint=f"Take a new snapshot: `lintas capture reset {config} --snapshot`, then start "
            "again (rows are re-sent with their snapshot ids). To keep this from recurring, "
            "keep binary logs longer (binlog_expire_logs_seconds) or raise "
            "max_slot_wal_keep_size, and keep the capture running.",
        )
        self.source = source
        self.position = position
        self.reason = reason


class SourceUnavailable(CaptureError):
    """The source database cannot be reached or answered with an error now."""

    retriable = True

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(
            f"Source {source} is unavailable: {reason}.",
            hint="The capture retries with backoff; check the database and the network.",
        )
        self.source = source
        self.reason = reason


class DeadLetterFailed(CaptureError):
    """Kafka did not acknowledge dead letters in time; the batch is retried."""

    retriable = True

    def __init__(self, topic: str, reason: str) -> None:
        super().__init__(f"Dead letters to {topic} were not acknowledged: {reason}.")
        self.topic = topic
        self.reason = reason


class StateLocked(CaptureError):
    """Another process holds this source's state: one capture process per source."""

    def __init__(self, source: str, path: Path, holders: Mapping[str, str] | None = None) -> None:
        who = f" (pid {holders['pid']})" if holders and "pid" in holders else ""
        super().__init__(
            f"Source {source} is already being captured by another process{who}: {path} is locked.",
            hint="Stop that process first; two captures of one source would race.",
        )
        self.source = source
        self.path = str(path)

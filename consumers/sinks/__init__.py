"""Sinks: consumers that write what they read in batches, with offsets they store themselves.

::

    from lintas.consumers.sinks import PostgresSink, BatchingConfig, canonical_pattern

:class:`BatchingSink` is the shared loop (adaptive batches, seek to stored offsets on every
assignment); :class:`PostgresSink` writes the canonical topics into the merged store,
exactly once (``docs/store.md``).
"""

from ._convert import CANONICAL_PREFIX, StoredEvent, canonical_pattern
from .base import BatchingConfig, BatchingSink, SinkState
from .batch import Entry, SinkBatch
from .exceptions import SinkError, SinkStateError
from .postgres import PostgresSink

__all__ = [
    # the loop
    "BatchingConfig",
    "BatchingSink",
    "Entry",
    "SinkBatch",
    "SinkState",
    # the store sink
    "CANONICAL_PREFIX",
    "PostgresSink",
    "StoredEvent",
    "canonical_pattern",
    # errors
    "SinkError",
    "SinkStateError",
]

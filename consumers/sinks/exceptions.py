"""Errors of the sinks.

Tree (this component's part of :mod:`lintas.exceptions`)::

    LintasError
    └── SinkError                   a sink cannot do what was asked
        └── SinkStateError          started twice, or used after it stopped

The store's own errors (:mod:`lintas.consumers.store.exceptions`) say when PostgreSQL is
out of reach (retriable: the sink retries) and which schema changes the store cannot
follow (one event type stops, never the sink).
"""

from __future__ import annotations

from lintas.exceptions import LintasError

__all__ = ["SinkError", "SinkStateError"]


class SinkError(LintasError):
    """Base class of the sinks' errors."""


class SinkStateError(SinkError):
    """The sink is not in a state that allows the call (``state`` says which it is in)."""

    def __init__(self, sink: str, state: str, wanted: str) -> None:
        super().__init__(f"Sink {sink!r} is {state}; cannot {wanted}.")
        self.sink = sink
        self.state = state

"""The ``lintas`` command line."""

# Importing the command modules registers their commands on ``app``.
from . import (  # noqa: F401
    _bench,
    _capture,
    _catalog,
    _deliver,
    _demo,
    _directory,
    _dlq,
    _gateway,
    _portal,
    _query,
    _registry,
    _retention,
    _schemas,
    _security,
    _sink,
    _spool,
    _stack,
    _topics,
    _worker,
)
from ._app import app, main

__all__ = ["app", "main"]

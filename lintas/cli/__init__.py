"""The ``lintas`` command line."""

# Importing the command modules registers their commands on ``app``.
from . import (  # noqa: F401
    _bench,
    _directory,
    _gateway,
    _registry,
    _schemas,
    _spool,
    _stack,
    _topics,
)
from ._app import app, main

__all__ = ["app", "main"]

"""The ``lintas`` command line."""

# Importing the command modules registers their commands on ``app``.
from . import _bench, _registry, _schemas, _stack, _topics  # noqa: F401
from ._app import app, main

__all__ = ["app", "main"]

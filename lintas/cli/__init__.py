"""The ``lintas`` command line."""

from ._app import app, main

# Importing the command modules registers their commands on ``app``.
from . import _stack  # noqa: E402, F401, I001

__all__ = ["app", "main"]

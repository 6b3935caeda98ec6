"""Errors of the demo.

Tree::

    LintasError
    └── DemoError                  the demo cannot do what was asked
        ├── DemoSetupFailed        the demo directory or its keys could not be set up
        ├── NodeUnavailable        no Node.js 18+ for the gateway applications
        └── GatewayClientFailed    the Node.js gateway client stopped or never started
"""

from __future__ import annotations

from lintas.exceptions import LintasError

__all__ = ["DemoError", "DemoSetupFailed", "GatewayClientFailed", "NodeUnavailable"]


class DemoError(LintasError):
    """Base class of the demo's errors."""


class DemoSetupFailed(DemoError):
    """The demo directory could not be imported, or the applications' keys issued."""

    def __init__(self, what: str, *, hint: str | None = None) -> None:
        super().__init__(f"The demo could not be set up: {what}", hint=hint)
        self.what = what


class NodeUnavailable(DemoError):
    """Node.js 18 or later is needed for the gateway applications and is not there."""

    def __init__(self, why: str) -> None:
        super().__init__(
            f"Node.js is not available: {why}.",
            hint="Install Node.js 18 or later (apt-get install nodejs); until then the "
            "demo's gateway applications stay idle.",
        )
        self.why = why


class GatewayClientFailed(DemoError):
    """The Node.js gateway client is not running (it exited, or never started)."""

    retriable = True

    def __init__(self, why: str) -> None:
        super().__init__(f"The gateway client is not running: {why}.")
        self.why = why

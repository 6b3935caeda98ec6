"""The root of every error Lintas raises on purpose.

Each component keeps its own ``exceptions.py`` beside the code that raises; all of them
derive from :class:`LintasError` so a caller can catch the platform's errors in one place.

Tree (the core's part; components extend it)::

    LintasError
    ├── ConfigurationError       bad settings: names the field and the rule
    └── StackError               the local stack could not do what was asked
        ├── PrerequisiteMissing  no JDK, no Maven, no PostgreSQL binaries, ...
        ├── PortInUse            a port we need is taken by another process
        ├── DataDirCorrupt       a data directory we cannot use as it is
        └── ComponentFailed      a component did not start or stop in time

Every error carries a ``hint`` that tells the user what to do next; the CLI prints the
message and the hint as one paragraph and exits non-zero, never with a traceback.
"""

from __future__ import annotations

__all__ = [
    "ComponentFailed",
    "ConfigurationError",
    "DataDirCorrupt",
    "LintasError",
    "PortInUse",
    "PrerequisiteMissing",
    "StackError",
]


class LintasError(Exception):
    """Base class for the platform's own errors.

    Attributes:
        retriable: whether trying the same operation again later may succeed; sinks and
            the webhook deliverer read it to decide whether to retry.
        hint: what the user can do about it, printed by the CLI after the message.
    """

    retriable: bool = False

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} {self.hint}"


class ConfigurationError(LintasError):
    """A setting is missing or breaks a rule; ``field`` names it."""

    def __init__(self, field: str, rule: str, *, hint: str | None = None) -> None:
        super().__init__(f"Invalid setting {field}: {rule}.", hint=hint)
        self.field = field
        self.rule = rule


class StackError(LintasError):
    """The local stack could not start, stop or report a component."""


class PrerequisiteMissing(StackError):
    """A program the local stack needs is not installed."""

    def __init__(self, what: str, *, hint: str) -> None:
        super().__init__(f"{what} is not available.", hint=hint)
        self.what = what


class PortInUse(StackError):
    """A fixed port was asked for but another process listens on it."""

    retriable = True

    def __init__(self, component: str, port: int) -> None:
        super().__init__(
            f"Port {port} that {component} needs is already in use by another process.",
            hint="Stop that process, or set another port (see `lintas up --help`).",
        )
        self.component = component
        self.port = port


class DataDirCorrupt(StackError):
    """A data directory exists but cannot be used as it is."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(
            f"The data directory {path} cannot be used: {reason}.",
            hint="Move it away or run `lintas down --purge` to start from an empty one "
            "(this deletes the local data).",
        )
        self.path = path
        self.reason = reason


class ComponentFailed(StackError):
    """A component did not become healthy, or did not stop, in time."""

    retriable = True

    def __init__(self, component: str, reason: str, *, log_path: str | None = None) -> None:
        hint = f"See its log: {log_path} (or `lintas logs {component}`)." if log_path else None
        super().__init__(f"{component} failed: {reason}.", hint=hint)
        self.component = component
        self.reason = reason
        self.log_path = log_path

"""Errors of the directory.

Tree::

    LintasError
    └── DirectoryError
        ├── InvalidEntry          one or more fields break a rule (each named with its rule)
        ├── NotFound              no OPD/application/subscriber/subscription/key by that name
        ├── AlreadyExists         the name (or another unique field) is taken
        ├── ConfirmationRequired  allowed, but risky: repeat with force=True (``--force``)
        └── InvalidApiKey         a key that is malformed, unknown, expired or revoked
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lintas.exceptions import LintasError

__all__ = [
    "AlreadyExists",
    "ConfirmationRequired",
    "DirectoryError",
    "InvalidApiKey",
    "InvalidEntry",
    "NotFound",
    "Problem",
]


class DirectoryError(LintasError):
    """Base of the directory's errors."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One broken rule: the field (a path such as ``filter.equals.jenis``), the rule, the value."""

    field: str
    rule: str
    value: Any = None

    def __str__(self) -> str:
        shown = "" if self.value is None else f" (got {self.value!r})"
        return f"{self.field}: {self.rule}{shown}"


class InvalidEntry(DirectoryError):
    """An entry breaks one or more rules; nothing was written."""

    def __init__(self, kind: str, key: str | None, problems: list[Problem]) -> None:
        what = f"{kind} {key!r}" if key else kind
        listed = "; ".join(str(p) for p in problems)
        super().__init__(f"Invalid {what}: {listed}.")
        self.kind = kind
        self.key = key
        self.problems = problems


class NotFound(DirectoryError):
    def __init__(self, kind: str, key: str, *, hint: str | None = None) -> None:
        super().__init__(f"No {kind} named {key!r}.", hint=hint)
        self.kind = kind
        self.key = key


class AlreadyExists(DirectoryError):
    def __init__(self, kind: str, key: str, field: str = "name") -> None:
        super().__init__(
            f"A {kind} with {field} {key!r} already exists ({field} must be unique).",
            hint="Choose another, or change the existing one.",
        )
        self.kind = kind
        self.key = key
        self.field = field


class ConfirmationRequired(DirectoryError):
    """The change is allowed but would likely break something in use."""

    def __init__(self, message: str) -> None:
        super().__init__(message, hint="Repeat with --force if that is intended.")


class InvalidApiKey(DirectoryError):
    """The presented API key does not authenticate; ``reason`` is safe to show the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"API key refused: {reason}.")
        self.reason = reason

"""Errors of analyst access.

Tree (this component's part of :mod:`lintas.exceptions`)::

    LintasError
    └── AnalyticsError
        ├── QueryRefused              the database refused the query (rights, syntax, ...)
        └── AnalystLoginUnavailable   no login with an analyst role can be used
"""

from __future__ import annotations

from lintas.exceptions import LintasError

__all__ = ["AnalystLoginUnavailable", "AnalyticsError", "QueryRefused"]


class AnalyticsError(LintasError):
    """Base class of analyst access's errors."""


class QueryRefused(AnalyticsError):
    """The database refused a query; its own message, code and hint are kept.

    Attributes:
        sqlstate: the SQLSTATE (``42501`` is ``insufficient_privilege``).
        reason: the database's message (``permission denied for table raw_events``).
        detail: the database's detail, if any.
    """

    def __init__(
        self, sqlstate: str, reason: str, *, detail: str | None = None, hint: str | None = None
    ) -> None:
        text = f"The database refused the query: {reason} (SQLSTATE {sqlstate})."
        if detail:
            text += f" {detail}"
        if sqlstate == "42501" and hint is None:
            hint = (
                "Analyst roles read the views of the analytics schema only and may not change "
                "anything (docs/analysts.md)."
            )
        super().__init__(text, hint=hint)
        self.sqlstate = sqlstate
        self.reason = reason
        self.detail = detail


class AnalystLoginUnavailable(AnalyticsError):
    """Neither a configured analyst login nor one the platform can provision is usable."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"No analyst login is available: {reason}.",
            hint="Set LINTAS_SINK__QUERY_DSN (and LINTAS_SINK__QUERY_PII_DSN for --pii) to a "
            "login granted lintas_analyst (lintas_analyst_pii), see docs/analysts.md.",
        )
        self.reason = reason

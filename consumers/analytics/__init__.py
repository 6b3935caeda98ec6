"""Analyst access to the merged store: read-only roles, masked views, ``lintas query``.

::

    from lintas.consumers.analytics import connect_analyst, run_query, render

Roles ``lintas_analyst`` (personal data masked) and ``lintas_analyst_pii`` (unmasked) read
the views of the ``analytics`` schema and nothing else; the views decide what to mask with
``pg_has_role``. See ``docs/analysts.md``.
"""

from .exceptions import AnalystLoginUnavailable, AnalyticsError, QueryRefused
from .logins import QUERY_LOGINS, connect_analyst, derived_password, ensure_login
from .query import OutputFormat, QueryAudit, QueryResult, render, run_query
from .views import ANALYST_ROLES, ANALYTICS_SCHEMA, functions_sql, type_view_sql, views_sql

__all__ = [
    # roles and views
    "ANALYST_ROLES",
    "ANALYTICS_SCHEMA",
    "functions_sql",
    "type_view_sql",
    "views_sql",
    # logins
    "QUERY_LOGINS",
    "connect_analyst",
    "derived_password",
    "ensure_login",
    # queries
    "OutputFormat",
    "QueryAudit",
    "QueryResult",
    "render",
    "run_query",
    # errors
    "AnalystLoginUnavailable",
    "AnalyticsError",
    "QueryRefused",
]

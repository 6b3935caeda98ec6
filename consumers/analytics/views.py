"""The analytics views: one per typed table, generated, and the cross-OPD ones in SQL.

A typed table ``store.<opd>_<event>_v<N>`` gets the view ``analytics.<opd>_<event>_v<N>``
with the same columns; a column tagged as personal data in the contract is masked for
readers without ``lintas_analyst_pii``:

- text with a partial form (NIK, name, phone, NPWP, ...): :sql:`analytics.mask`;
- any other tagged column (dates of birth, health, welfare decile, addresses): NULL;
- a ``jsonb`` column with tagged fields inside (``anggota[].nik``): those keys removed from
  the object or from every element of the array; deeper or mixed shapes: NULL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from lintas.consumers.store.ddl import STORE_SCHEMA, quote_ident, quote_literal

__all__ = ["ANALYTICS_SCHEMA", "ANALYST_ROLES", "functions_sql", "type_view_sql", "views_sql"]

ANALYTICS_SCHEMA = "analytics"
ANALYST_ROLES = ("lintas_analyst", "lintas_analyst_pii")
_TZ_TOKEN = "__TZ__"


def _script(name: str) -> str:
    return resources.files(__package__ or "lintas.consumers.analytics").joinpath(name).read_text()


def functions_sql() -> str:
    """The script of the masking functions (``functions.sql``), run before any view."""
    return _script("functions.sql")


def views_sql(timezone: str) -> str:
    """The script of the cross-OPD views (``views.sql``) for the display zone ``timezone``."""
    return _script("views.sql").replace(_TZ_TOKEN, quote_literal(timezone))


def _first_key(path: str) -> str:
    """``nik`` of ``nik``, ``alamat.jalan``, ``anak[].nik`` or ``data{}.x``."""
    for stop in (".", "[", "{"):
        path = path.split(stop, 1)[0]
    return path


def _nested_mask(column: str, paths: Mapping[str, str]) -> str:
    object_keys: set[str] = set()
    element_keys: set[str] = set()
    for path in paths:
        if path.startswith("[]."):
            element_keys.add(_first_key(path[3:]))
        elif path.startswith("."):
            object_keys.add(_first_key(path[1:]))
        else:  # inside a map, or a tagged array of scalars: no key to remove
            return f"CASE WHEN analytics.pii_allowed() THEN {column} END"
    if object_keys and element_keys:  # a union of a record and an array
        return f"CASE WHEN analytics.pii_allowed() THEN {column} END"
    keys = ", ".join(quote_literal(k) for k in sorted(object_keys or element_keys))
    if object_keys:
        masked = f"{column} - ARRAY[{keys}]::text[]"
    else:
        masked = (
            f"(SELECT coalesce(jsonb_agg(e.v - ARRAY[{keys}]::text[] ORDER BY e.i), '[]'::jsonb)"
            f" FROM jsonb_array_elements({column}) WITH ORDINALITY AS e(v, i))"
        )
    return (
        f"CASE WHEN analytics.pii_allowed() THEN {column} "
        f"WHEN {column} IS NULL OR jsonb_typeof({column}) = 'null' THEN NULL ELSE {masked} END"
    )


def type_view_sql(table: str, columns: Sequence[tuple[str, str]], pii: Mapping[str, Any]) -> str:
    """``CREATE OR REPLACE VIEW`` of a typed table's analytics view.

    Args:
        table: the typed table's name in the ``store`` schema.
        columns: (name, type) of every column of the table, in table order.
        pii: per column, its personal-data kind (``"nik"``) or, for a ``jsonb`` column, a
            mapping of the tagged paths below it (``{"[].nik": "nik"}``); as kept in
            ``store.event_types.pii_columns``.
    """
    select = []
    for name, sql_type in columns:
        ref = f"t.{quote_ident(name)}"
        spec = pii.get(name)
        if isinstance(spec, str):
            if sql_type == "text":
                expr = f"analytics.pii_text({ref}, {quote_literal(spec)})"
            else:
                expr = f"CASE WHEN analytics.pii_allowed() THEN {ref} END"
        elif isinstance(spec, Mapping) and spec and sql_type == "jsonb":
            expr = _nested_mask(ref, spec)
        else:
            expr = ref
        select.append(f"{expr} AS {quote_ident(name)}")
    return (
        f"CREATE OR REPLACE VIEW {ANALYTICS_SCHEMA}.{quote_ident(table)} AS\nSELECT "
        + ",\n       ".join(select)
        + f"\nFROM {STORE_SCHEMA}.{quote_ident(table)} t"
    )

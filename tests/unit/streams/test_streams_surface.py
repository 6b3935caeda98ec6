"""The public surface of lintas.streams: every exported name exists and says what it is."""

from __future__ import annotations

import inspect

import lintas.streams as streams


def test_every_exported_name_exists_and_has_a_docstring() -> None:
    for name in streams.__all__:
        obj = getattr(streams, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"lintas.streams.{name} has no docstring"


def test_reason_codes_are_documented_one_by_one() -> None:
    source = inspect.getsource(streams.Reason)
    for reason in streams.Reason:
        assert f'"{reason.value}"\n    """' in source, f"{reason.value} has no doc string"

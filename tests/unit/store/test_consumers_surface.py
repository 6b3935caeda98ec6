"""The public surface of the consumers, store, sinks and analytics packages: every name exported."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize(
    "package",
    [
        "lintas.consumers",
        "lintas.consumers.sinks",
        "lintas.consumers.store",
        "lintas.consumers.analytics",
    ],
)
def test_every_exported_name_exists_and_has_a_docstring(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__doc__
    assert len(module.__all__) == len(set(module.__all__))
    for name in module.__all__:
        value = getattr(module, name)
        if callable(value):
            assert value.__doc__, f"{package}.{name} has no docstring"

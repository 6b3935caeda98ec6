"""The package's public surface: everything exported exists and says what it is."""

from __future__ import annotations

import inspect

import lintas.producers.gateway as gateway


def test_exported_members_exist_and_are_documented() -> None:
    assert len(gateway.__all__) == len(set(gateway.__all__))
    for name in gateway.__all__:
        member = getattr(gateway, name)
        assert inspect.getdoc(member), f"{name} has no docstring"


def test_public_methods_are_documented() -> None:
    for cls in (gateway.Gateway, gateway.GatewayServer):
        for name, member in vars(cls).items():
            if not name.startswith("_") and callable(member):
                assert inspect.getdoc(member), f"{cls.__name__}.{name} has no docstring"

"""The demo package's public surface: everything exported exists and says what it is."""

from __future__ import annotations

import inspect

import lintas.demo as demo


def test_exported_members_exist_and_are_documented() -> None:
    assert len(demo.__all__) == len(set(demo.__all__))
    for name in demo.__all__:
        member = getattr(demo, name)
        if inspect.isclass(member) or inspect.isfunction(member):
            assert inspect.getdoc(member), f"{name} has no docstring"


def test_public_methods_are_documented() -> None:
    for cls in (demo.DemoRun, demo.Simulator, demo.Story, demo.Population, demo.EventFactory):
        for name, member in vars(cls).items():
            if not name.startswith("_") and inspect.isfunction(member):
                assert inspect.getdoc(member), f"{cls.__name__}.{name} has no docstring"

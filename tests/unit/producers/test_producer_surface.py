"""The public surface of ``lintas.producers``: exports, docstrings, errors, settings."""

from __future__ import annotations

import inspect

import pytest

import lintas.producers as producers
from lintas.exceptions import ConfigurationError, LintasError
from lintas.settings import load_settings


def test_every_export_exists_and_is_documented() -> None:
    assert len(producers.__all__) == len(set(producers.__all__))
    for name in producers.__all__:
        assert not name.startswith("_")
        obj = getattr(producers, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"
    public = {n for n in dir(producers) if not n.startswith("_")}
    modules = {n for n in public if inspect.ismodule(getattr(producers, n))}
    assert public - modules - set(producers.__all__) == set()


def test_public_methods_are_documented() -> None:
    for cls in (producers.EventProducer, producers.Producer):
        for name, member in inspect.getmembers(cls, inspect.isfunction):
            if not name.startswith("_"):
                assert inspect.getdoc(member), f"{cls.__name__}.{name} has no docstring"


def test_errors_form_one_tree() -> None:
    errors = [
        getattr(producers, n)
        for n in producers.__all__
        if inspect.isclass(getattr(producers, n))
        and issubclass(getattr(producers, n), BaseException)
    ]
    assert len(errors) == 11
    for error in errors:
        assert issubclass(error, producers.ProducerError)
        assert issubclass(error, LintasError)
        assert error.__doc__ and error.__name__ in (producers.exceptions.__doc__ or "")
    retriable = {e.__name__ for e in errors if e.retriable}
    assert retriable == {"SchemaUnavailable", "SpoolFull", "FlushTimeout"}


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LINTAS_PRODUCER__LINGER_MS", "-1"),
        ("LINTAS_PRODUCER__BATCH_BYTES", "100"),
        ("LINTAS_PRODUCER__SPOOL_MAX_BYTES", "1000"),
        ("LINTAS_PRODUCER__SEND_TIMEOUT_S", "0"),
        ("LINTAS_PRODUCER__SPOOL_DIRECTORY", "/tmp/x"),
    ],
)
def test_bad_producer_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert caught.value.field == variable


def test_producer_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINTAS_PRODUCER__LINGER_MS", "0")
    monkeypatch.setenv("LINTAS_PRODUCER__BATCH_BYTES", "65536")
    monkeypatch.setenv("LINTAS_PRODUCER__SPOOL_DIR", "/var/lib/siak/spool")
    producer = load_settings().producer
    assert (producer.linger_ms, producer.batch_bytes) == (0, 65536)
    assert str(producer.spool_dir) == "/var/lib/siak/spool"

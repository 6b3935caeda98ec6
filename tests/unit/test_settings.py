from __future__ import annotations

from pathlib import Path

import pytest

from lintas.exceptions import ConfigurationError
from lintas.settings import Settings, load_settings


def test_defaults_need_no_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(__import__("os").environ):
        if key.startswith("LINTAS_"):
            monkeypatch.delenv(key)
    settings = load_settings()
    assert settings.kafka_bootstrap is None and settings.pg_dsn is None
    assert settings.timezone == "Asia/Jakarta"
    assert settings.kafka.sasl_mechanism == "SCRAM-SHA-512"
    assert settings.data_dir.name == "lintas"


def test_env_prefix_and_nesting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINTAS_KAFKA_BOOTSTRAP", "kafka-1:9092,kafka-2:9092")
    monkeypatch.setenv("LINTAS_KAFKA__PARTITIONS", "12")
    monkeypatch.setenv("LINTAS_TIMEZONE", "Asia/Makassar")
    settings = load_settings()
    assert settings.kafka_bootstrap == "kafka-1:9092,kafka-2:9092"
    assert settings.kafka.partitions == 12
    assert settings.display_zone.key == "Asia/Makassar"


@pytest.mark.parametrize(
    ("env", "value", "field", "words"),
    [
        ("LINTAS_KAFKA__PARTITIONS", "0", "LINTAS_KAFKA__PARTITIONS", "greater than or equal to 1"),
        ("LINTAS_KAFKA_BOOTSTRAP", "no-port-here", "LINTAS_KAFKA_BOOTSTRAP", "not host:port"),
        ("LINTAS_TIMEZONE", "Asia/Bandung", "LINTAS_TIMEZONE", "unknown IANA time zone"),
        ("LINTAS_PG_DSN", "mysql://x", "LINTAS_PG_DSN", "postgresql://"),
        ("LINTAS_LOG_LEVEL", "LOUD", "LINTAS_LOG_LEVEL", "one of DEBUG"),
    ],
)
def test_bad_settings_name_the_field_and_the_rule(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, field: str, words: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert info.value.field == field
    assert words in str(info.value)


def test_unknown_options_are_refused() -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings(kafka={"partitons": 3})
    assert "PARTITONS" in info.value.field
    assert "Extra inputs are not permitted" in info.value.rule


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(ValueError):
        settings.timezone = "UTC"  # type: ignore[misc]

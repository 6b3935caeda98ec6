"""Kafka retention per event type: what ``lintas topics sync`` asks of the broker."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from lintas.exceptions import ConfigurationError
from lintas.settings import KafkaSettings
from lintas.topics import DLQ_TOPIC, desired_topics

_DAY_MS = 86_400_000


def _type(opd: str, name: str, **schema: Any) -> Any:
    return SimpleNamespace(
        id=f"{opd}.{name}.v1",
        topic=f"opd.{opd}.{name}.v1",
        canonical_topic=f"lintas.canonical.{opd}.{name}.v1",
        schema={"type": "record", **schema},
    )


def _retention(specs: list[Any]) -> dict[str, int]:
    return {s.name: int(s.configs["retention.ms"]) for s in specs if "retention.ms" in s.configs}


def test_each_event_type_keeps_its_topics_as_long_as_its_contract_says() -> None:
    types = [_type("dinkes", "kunjungan_pasien", retention_days=2), _type("dukcapil", "kematian")]
    got = _retention(desired_topics(KafkaSettings(), event_types=types, subscribers=["dinsos"]))
    assert got["opd.dinkes.kunjungan_pasien.v1"] == 2 * _DAY_MS
    assert got["lintas.canonical.dinkes.kunjungan_pasien.v1"] == 2 * _DAY_MS
    assert got["opd.dukcapil.kematian.v1"] == 7 * _DAY_MS
    # A delivery topic may carry the short-lived type too: it keeps nothing longer.
    assert got["lintas.deliver.dinsos"] == 2 * _DAY_MS
    assert got[DLQ_TOPIC] <= 30 * _DAY_MS


def test_dead_letters_are_kept_30_days_at_most() -> None:
    assert KafkaSettings().dlq_retention_days == 30
    with pytest.raises(ValidationError):
        KafkaSettings(dlq_retention_days=31)
    got = _retention(desired_topics(KafkaSettings(dlq_retention_days=3)))
    assert got[DLQ_TOPIC] == 3 * _DAY_MS


@pytest.mark.parametrize("value", [-1, 0, "7", None, 4000])
def test_a_retention_that_would_keep_data_forever_is_refused(value: Any) -> None:
    with pytest.raises(
        ConfigurationError, match=re.escape("retention_days of dinkes.kunjungan_pasien.v1")
    ):
        desired_topics(
            KafkaSettings(), event_types=[_type("dinkes", "kunjungan_pasien", retention_days=value)]
        )

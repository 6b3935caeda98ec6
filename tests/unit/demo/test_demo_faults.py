"""The deliberately bad events: taken by producers, refused by the worker for their reason."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections import Counter

import lokal
import pytest

from lintas.demo import EVENT_TYPES, BadKind, BadSchedule, EventFactory, Population, spoil
from lintas.demo.faults import _NOT_PROVINCES, NIK_FIELDS, TIME_FIELDS, can_spoil
from lintas.schemas import load_catalog, model_for
from lintas.streams import Reason
from lintas.streams.rules import RuleContext, rules_for

NOW = dt.datetime(2026, 11, 23, 3, 15, tzinfo=dt.UTC)
CATALOG = load_catalog()
CASES = [
    (event_type, kind)
    for event_type in EVENT_TYPES
    for kind in BadKind
    if kind is not BadKind.INVALID_NIK or event_type in NIK_FIELDS
]


def test_every_bad_kind_is_a_dead_letter_reason() -> None:
    assert {Reason(kind.value) for kind in BadKind} <= set(Reason)


@pytest.mark.parametrize(("event_type", "kind"), CASES)
def test_a_bad_event_keeps_its_contract_and_breaks_exactly_its_rule(
    event_type: str, kind: BadKind
) -> None:
    rng = random.Random(f"{event_type}/{kind}")
    factory = EventFactory(Population(rng, today=NOW.date()), rng, clock=lambda: NOW)
    rules = rules_for(CATALOG.get(event_type))
    spoilt = 0
    while spoilt < 25:
        record = factory.make(event_type)
        if not can_spoil(event_type, record, kind):
            # Only an anonymous complaint lacks a NIK to mistype.
            assert event_type == "diskominfo.pengaduan_diterima.v1" and record["anonim"]
            continue
        spoilt += 1
        bad = spoil(event_type, record, kind, rng, now=NOW)
        # The producer SDK and the gateway take it: the contract's patterns still hold.
        model_for(event_type).model_validate(bad)
        violations = rules.check(bad, RuleContext(now=NOW))
        assert [v.reason for v in violations] == [Reason(kind.value)], violations
        assert rules.check(record, RuleContext(now=NOW)) == []


def test_types_without_a_nik_cannot_get_a_bad_one() -> None:
    rng = random.Random(1)
    record = EventFactory(Population(rng, today=NOW.date()), rng, clock=lambda: NOW).make(
        "bapenda.pajak_dibayar.v1"
    )
    with pytest.raises(ValueError, match="no field"):
        spoil("bapenda.pajak_dibayar.v1", record, BadKind.INVALID_NIK, rng, now=NOW)


def test_the_fields_the_mistakes_hit_exist() -> None:
    for event_type, name in {**NIK_FIELDS, **TIME_FIELDS}.items():
        fields = {f["name"] for f in CATALOG.get(event_type).schema["fields"]}
        assert name in fields, (event_type, name)
    assert set(TIME_FIELDS) == set(EVENT_TYPES)


def test_made_up_province_codes_are_no_province() -> None:
    assert not set(_NOT_PROVINCES) & set(lokal.PROVINCES)


def test_the_schedule_spoils_exactly_the_share_and_starts_early() -> None:
    schedule = BadSchedule(0.02, first_after=10)
    flags = [schedule.next() for _ in range(5000)]
    assert sum(flags) == 100
    assert flags.index(True) == 9  # the 10th event: a short demo shows a dead letter
    positions = [i for i, f in enumerate(flags) if f]
    assert {b - a for a, b in itertools.pairwise(positions)} == {50}  # even


def test_no_bad_events_when_the_share_is_zero() -> None:
    schedule = BadSchedule(0.0)
    assert not any(schedule.next() for _ in range(1000))
    with pytest.raises(ValueError, match=r"0-0\.5"):
        BadSchedule(0.9)


def test_kinds_take_turns_and_skip_what_an_event_cannot_carry() -> None:
    schedule = BadSchedule()
    death = {"nik": "3273012108480001"}
    kinds = Counter(schedule.kind_for("dukcapil.kematian_dicatat.v1", death) for _ in range(30))
    assert kinds == dict.fromkeys(BadKind, 10)
    no_nik = {schedule.kind_for("bapenda.pajak_dibayar.v1", {}) for _ in range(30)}
    assert no_nik == {BadKind.UNKNOWN_WILAYAH, BadKind.FUTURE_DATE}
    anonymous = {"anonim": True, "nik_pelapor": None}
    kinds_anon = {
        schedule.kind_for("diskominfo.pengaduan_diterima.v1", anonymous) for _ in range(9)
    }
    assert BadKind.INVALID_NIK not in kinds_anon

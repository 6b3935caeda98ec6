"""The demo's generated events: valid catalog events that the stream worker would accept."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter

import lokal
import pytest

from lintas.demo import EVENT_TYPES, EventFactory, Population
from lintas.demo.apps import DEMO_APPS
from lintas.demo.gateway_client import cloud_event
from lintas.demo.types import SimEvent
from lintas.schemas import load_catalog, model_for
from lintas.streams.rules import RuleContext, rules_for

NOW = dt.datetime(2026, 11, 23, 3, 15, tzinfo=dt.UTC)  # Monday 10:15 WIB
CATALOG = load_catalog()


def _factory(seed: int, now: dt.datetime = NOW) -> EventFactory:
    rng = random.Random(seed)
    return EventFactory(Population(rng, today=now.date()), rng, clock=lambda: now)


def test_every_catalog_event_type_has_a_generator() -> None:
    assert set(EVENT_TYPES) == {et.id for et in CATALOG}
    factory = _factory(1)
    for event_type in EVENT_TYPES:
        assert factory.make(event_type)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_events_pass_the_model_and_the_workers_rules(seed: int, event_type: str) -> None:
    factory = _factory(seed)
    rules = rules_for(CATALOG.get(event_type))
    ctx = RuleContext(now=NOW)
    for _ in range(40):
        record = factory.make(event_type)
        model_for(event_type).model_validate(record)
        assert rules.check(record, ctx) == [], record


def test_events_on_a_new_years_morning_are_not_in_the_future() -> None:
    # 00:30 WIB on 1 January is still the old year in UTC: dates must follow the Pemda's day
    # without running ahead of what the worker allows.
    now = dt.datetime(2026, 12, 31, 17, 30, tzinfo=dt.UTC)
    factory = _factory(5, now)
    ctx = RuleContext(now=now)
    for event_type in EVENT_TYPES:
        for _ in range(10):
            record = factory.make(event_type)
            assert rules_for(CATALOG.get(event_type)).check(record, ctx) == [], record


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_the_gateways_json_form_is_the_same_event(event_type: str) -> None:
    """What the Node.js client POSTs (JSON data) validates to the same event."""
    app = next(a for a in DEMO_APPS if event_type in a.event_types)
    record = _factory(9).make(event_type)
    event = cloud_event(app, SimEvent(event_type=event_type, record=record, id="e-1"))
    model = model_for(event_type)
    assert model.model_validate(event["data"]) == model.model_validate(record)
    assert event["source"] == f"/opd/{app.opd}/{app.app_id}"
    assert event["type"] == event_type


def test_people_have_unique_niks_that_match_their_sex_and_birth_date() -> None:
    people = Population(random.Random(4), today=NOW.date())
    citizens = [people.person() for _ in range(500)]
    assert len({c.nik for c in citizens}) == len(citizens)
    for c in citizens:
        info = lokal.parse_nik(c.nik, reference_date=NOW.date())
        assert info.valid, info.errors
        assert info.gender == ("P" if c.perempuan else "L")
        assert info.birth_date == c.tanggal_lahir.isoformat()
        assert c.kode_wilayah.startswith(info.district_code + ".")
        assert c.kode_wilayah.startswith("32.73.")


def test_names_come_from_lokal_and_vary() -> None:
    people = Population(random.Random(6), today=NOW.date())
    names = [people.name(perempuan=i % 2 == 0) for i in range(200)]
    assert all(2 <= len(n.split()) <= 3 for n in names)
    assert len(set(names)) > 150
    first = Counter(n.split()[0] for n in names)
    assert len(first) > 30


def test_families_have_a_wife_older_than_the_children() -> None:
    people = Population(random.Random(8), today=NOW.date())
    for _ in range(100):
        family = people.family()
        assert family.hubungan[0] == "KEPALA_KELUARGA"
        assert not family.head.perempuan
        assert {m.nomor_kk for m in family.members} == {family.nomor_kk}
        if family.spouse is not None:
            assert family.spouse.perempuan
        parents = [m for m, r in zip(family.members, family.hubungan, strict=True) if r != "ANAK"]
        children = [m for m, r in zip(family.members, family.hubungan, strict=True) if r == "ANAK"]
        for child in children:
            assert all(child.tanggal_lahir > p.tanggal_lahir for p in parents)


def test_a_death_is_of_an_elder_and_ends_their_aid() -> None:
    factory = _factory(3)
    recipient = factory.recipient()
    record = factory.kematian(recipient, tanggal_kematian=NOW.date() - dt.timedelta(days=20))
    assert record["nik"] == recipient.nik
    assert factory.people.is_deceased(recipient.nik)
    for _ in range(200):
        assert factory.bansos_disalurkan()["nik"] != recipient.nik
    for _ in range(50):
        elder = factory.kematian()
        age = (elder["tanggal_kematian"] - elder["tanggal_lahir"]).days / 365.25
        assert age >= 54


def test_tax_payments_of_businesses_match_their_permits() -> None:
    """permits_with_tax joins on village and business name: a permit's business pays."""
    factory = _factory(11)
    permits = {
        (r["kode_wilayah"], r["nama_usaha"]) for r in (factory.izin_terbit() for _ in range(20))
    }
    payments = [factory.pajak_dibayar() for _ in range(200)]
    businesses = [p for p in payments if p["nop"] is None]
    assert businesses
    assert all((p["kode_wilayah"], p["nama_wajib_pajak"]) in permits for p in businesses)

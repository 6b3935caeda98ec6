"""The directory's entries, rules and routing, without a database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from lintas.directory import (
    Application,
    InvalidEntry,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    matched_event_types,
    matches,
    parse_entry,
    project,
    route,
)
from lintas.directory._rules import application_problems, subscription_problems
from lintas.directory._secrets import (
    SecretBox,
    new_api_key,
    new_webhook_secret,
    parse_api_key,
    secret_matches,
)
from lintas.directory.exceptions import InvalidApiKey
from lintas.schemas import load_catalog

KEMATIAN = "dukcapil.kematian_dicatat.v1"


def _sub(**over: Any) -> Subscription:
    data = {
        "name": "kematian-dinsos",
        "subscriber": "sikesra",
        "event_types": ["dukcapil.kematian_*"],
        "fields": ["nik", "tanggal_kematian"],
        "purpose": "Penghentian bansos bagi penerima yang meninggal.",
        **over,
    }
    return parse_entry(Subscription, data)


@pytest.mark.parametrize(
    "number",
    ["000123.01/DJAI.PSE/07/2022", "00123/DJAI.PSE/06/2021", "012345/DJAI.PSE/12/2030"],
)
def test_pse_numbers_in_the_kominfo_format_are_accepted(number: str) -> None:
    app = parse_entry(Application, {"id": "siak", "name": "SIAK", "opd": "dukcapil",
                                    "method": "sdk", "pse_number": number})  # fmt: skip
    assert app.pse_number == number


@pytest.mark.parametrize(
    "number", ["123/DJAI.PSE/07/2022", "000123.01/DJAI-PSE/07/2022", "000123/DJAI.PSE/13/2022", ""]
)
def test_pse_numbers_in_another_format_are_refused_naming_the_field(number: str) -> None:
    with pytest.raises(InvalidEntry) as exc:
        data = {"id": "siak", "name": "SIAK", "opd": "dukcapil", "method": "sdk"}
        parse_entry(Application, {**data, "pse_number": number}, kind="application")
    assert [p.field for p in exc.value.problems] == ["pse_number"]
    assert "DJAI.PSE" in str(exc.value)
    assert "application 'siak'" in str(exc.value)


def test_every_broken_rule_is_reported_at_once() -> None:
    with pytest.raises(InvalidEntry) as exc:
        parse_entry(
            Application,
            {"id": "Bad Id", "name": "", "opd": "dukcapil", "method": "fax", "extra": 1},
        )
    assert {p.field for p in exc.value.problems} == {"id", "name", "method", "extra"}


def test_webhook_subscriber_needs_an_http_url_and_kafka_one_none() -> None:
    with pytest.raises(InvalidEntry) as exc:
        parse_entry(Subscriber, {"name": "x1", "opd": "dinsos", "mode": "webhook",
                                 "webhook_url": "javascript:alert(1)"})  # fmt: skip
    assert exc.value.problems[0].field == "webhook_url"
    with pytest.raises(InvalidEntry) as exc:
        parse_entry(Subscriber, {"name": "x1", "opd": "dinsos", "mode": "kafka",
                                 "webhook_url": "https://a.example/h"})  # fmt: skip
    assert exc.value.problems[0].field == "webhook_url"
    ok = parse_entry(Subscriber, {"name": "x1", "opd": "dinsos", "mode": "kafka"})
    assert ok.delivery_topic == "lintas.deliver.x1"


def test_subscription_rules_against_the_catalog() -> None:
    catalog = load_catalog()
    assert subscription_problems(_sub(), catalog) == []
    problems = subscription_problems(
        _sub(event_types=["dukcapil.kematian_*", "nope.*"], fields=["nik", "gaji"],
             filter={"kode_wilayah_prefix": "32.73", "equals": {"x": 1}}),
        catalog,
    )  # fmt: skip
    assert {(p.field, p.value) for p in problems} == {
        ("event_types", "nope.*"),
        ("fields", "gaji"),
        ("filter.equals.x", "x"),
    }
    with pytest.raises(InvalidEntry) as exc:
        _sub(fields=["*", "nik"])
    assert "'*'" in str(exc.value)
    with pytest.raises(InvalidEntry):
        _sub(filter={"kode_wilayah_prefix": "99.99"})


def test_application_may_produce_only_its_own_opds_types() -> None:
    catalog = load_catalog()
    app = parse_entry(Application, {"id": "simpus", "name": "SIMPUS", "opd": "dinkes",
                                    "method": "gateway", "produces": [KEMATIAN]})  # fmt: skip
    assert [p.field for p in application_problems(app, catalog)] == ["produces"]


def test_globs_match_catalog_types() -> None:
    catalog = load_catalog()
    ids = [et.id for et in matched_event_types(["*.kematian_dicatat.v1"], catalog)]
    assert ids == [KEMATIAN]
    assert len(matched_event_types(["dukcapil.*"], catalog)) == len(catalog.by_opd("dukcapil"))


def test_matching_filters_and_projection() -> None:
    record = {
        "nik": "3273010101900001",
        "nama": "Budi",
        "tanggal_kematian": dt.date(2026, 11, 1),
        "kode_wilayah": "32.73.01.1001",
        "jumlah": Decimal("10.00"),
        "aktif": True,
    }
    sub = _sub(
        filter={"kode_wilayah_prefix": "32.73", "equals": {"tanggal_kematian": "2026-11-01"}}
    )
    assert matches(sub, KEMATIAN, record)
    assert project(sub, record) == {"nik": record["nik"], "tanggal_kematian": dt.date(2026, 11, 1)}
    assert not matches(sub, "dukcapil.kelahiran_dicatat.v1", record)
    assert not matches(_sub(filter={"kode_wilayah_prefix": "33.74"}), KEMATIAN, record)
    assert not matches(_sub(filter={"equals": {"nama": "Ani"}}), KEMATIAN, record)
    assert matches(_sub(filter={"equals": {"jumlah": 10, "aktif": True}}), KEMATIAN, record)
    assert not matches(_sub(filter={"equals": {"aktif": "false"}}), KEMATIAN, record)
    assert not matches(_sub(status=SubscriptionStatus.PAUSED), KEMATIAN, record)
    assert project(_sub(fields=["*"]), record) == record
    routes = route([sub, _sub(name="other", filter={"equals": {"nama": "Ani"}})], KEMATIAN, record)
    assert [r.subscription.name for r in routes] == ["kematian-dinsos"]


def test_region_prefix_matches_whole_segments_only() -> None:
    sub = _sub(filter={"kode_wilayah_prefix": "32.73.01"})
    assert matches(sub, KEMATIAN, {"kode_wilayah": "32.73.01"})
    assert matches(sub, KEMATIAN, {"kode_wilayah": "32.73.01.1001"})
    assert not matches(sub, KEMATIAN, {"kode_wilayah": "32.73.010"})
    assert not matches(sub, KEMATIAN, {})


def test_api_keys_verify_by_hash_and_refuse_malformed_tokens() -> None:
    key_id, token, digest = new_api_key()
    parsed_id, secret = parse_api_key(token)
    assert parsed_id == key_id and secret_matches(secret, digest)
    assert not secret_matches(secret[:-1] + ("A" if secret[-1] != "A" else "B"), digest)
    for bad in ("", "lk_short_x", token + "x", token.replace("lk_", "pk_")):
        with pytest.raises(InvalidApiKey, match="malformed"):
            parse_api_key(bad)
    assert new_api_key()[1] != token


def test_webhook_secrets_are_sealed_with_a_key_file(tmp_path: Any) -> None:
    secret = new_webhook_secret()
    assert secret.startswith("whsec_")
    box = SecretBox(tmp_path / "secrets" / "directory.key")
    assert not box.key_file.exists()  # created on first use only
    sealed = box.seal(secret)
    assert secret.encode() not in sealed
    assert box.key_file.stat().st_mode & 0o777 == 0o600
    assert SecretBox(box.key_file).open(sealed) == secret

"""The store's retention policy and the SQL that removes personal data (no database)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from lintas.consumers.store import RetentionInvalid, store_policy
from lintas.consumers.store.retention import typed_assignments
from lintas.settings import (
    AuditSettings,
    RetentionSettings,
    Settings,
    StoreRetentionAction,
    TypeRetention,
)


def _type(type_id: str, **schema: Any) -> Any:
    return SimpleNamespace(id=type_id, schema={"type": "record", **schema})


def test_settings_win_over_the_contract_which_wins_over_the_default() -> None:
    settings = RetentionSettings(
        store_days=1000,
        event_types={"dinkes.kunjungan_pasien.v1": TypeRetention(days=90, action="delete")},
    )
    types = [
        _type("dinkes.kunjungan_pasien.v1", store_retention_days=365),
        _type("dukcapil.kematian_dicatat.v1", store_retention_days=3650),
        _type("dinsos.bansos_disalurkan.v1"),
    ]
    policy = store_policy(settings, types, stored_types=["diskominfo.survei_baru.v1"])
    assert {k: (p.days, p.action.value, p.source) for k, p in policy.items()} == {
        "dinkes.kunjungan_pasien.v1": (90, "delete", "settings"),
        "dinsos.bansos_disalurkan.v1": (1000, "pseudonymise", "default"),
        "diskominfo.survei_baru.v1": (1000, "pseudonymise", "default"),
        "dukcapil.kematian_dicatat.v1": (3650, "pseudonymise", "contract"),
    }
    now = dt.datetime(2025, 11, 23, tzinfo=dt.UTC)
    assert policy["dinkes.kunjungan_pasien.v1"].cutoff(now) == now - dt.timedelta(days=90)


@pytest.mark.parametrize("value", [0, -1, "365", True, 40_000])
def test_a_contract_retention_that_is_not_a_sane_number_of_days_is_refused(value: Any) -> None:
    with pytest.raises(RetentionInvalid) as refused:
        store_policy(
            RetentionSettings(), [_type("dinkes.kunjungan_pasien.v1", store_retention_days=value)]
        )
    assert refused.value.event_type == "dinkes.kunjungan_pasien.v1"
    assert "store_retention_days" in (refused.value.hint or "")


def test_settings_refuse_what_would_keep_data_forever_or_audit_too_briefly() -> None:
    with pytest.raises(ValidationError):
        RetentionSettings(store_days=0)
    with pytest.raises(ValidationError, match="event type id"):
        RetentionSettings(event_types={"kunjungan": TypeRetention(days=5)})
    with pytest.raises(ValidationError):
        AuditSettings(retention_days=30)  # the database keeps a year whatever is set
    assert Settings().retention.store_action is StoreRetentionAction.PSEUDONYMISE
    assert Settings().audit.retention_days >= 365


def test_pseudonymising_sets_niks_to_pseudonyms_and_other_personal_data_to_null() -> None:
    pii = {
        "nik": "nik",
        "nama": "nama",
        "tanggal_lahir": "tanggal_lahir",
        "anggota": {"[].nik": "nik", "[].nama": "nama"},
        "alamat": {".jalan": "alamat"},
        "tambahan": {"{}": "teks_bebas"},
        "added_later": "telepon",
    }
    types = {
        "nik": "text",
        "nama": "text",
        "tanggal_lahir": "date",
        "anggota": "jsonb",
        "alamat": "jsonb",
        "tambahan": "jsonb",
    }
    items = dict(item.split(" = ", 1) for item in typed_assignments(pii, types))
    assert set(items) == {
        '"nik"',
        '"nama"',
        '"tanggal_lahir"',
        '"anggota"',
        '"alamat"',
        '"tambahan"',
    }
    assert "'psn:'" in items['"nik"'] and "store_secret" in items['"nik"']
    assert items['"nama"'] == items['"tanggal_lahir"'] == items['"tambahan"'] == "NULL"
    assert "jsonb_array_elements" in items['"anggota"'] and "'nama', 'nik'" in items['"anggota"']
    assert items['"alamat"'].endswith("- ARRAY['jalan']::text[] END")

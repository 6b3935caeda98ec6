"""Models derived from the .avsc files, the examples, and the 422 error helper."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal

import lokal
import pytest
from lokal import wilayah
from pydantic import ValidationError

from lintas.schemas import (
    EventModel,
    EventType,
    example_event,
    field_errors,
    from_avro_dict,
    load_catalog,
    model_for,
    to_avro_dict,
)
from lintas.schemas.examples import build_nik

EVENT_TYPES = list(load_catalog())


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.id)
def test_every_event_type_has_a_model_and_a_valid_example(event_type: EventType) -> None:
    model = model_for(event_type)
    assert issubclass(model, EventModel)
    assert model.__name__ == event_type.record_name
    assert model.__event_type__ is event_type
    assert model_for(event_type.topic) is model
    for spec in event_type.schema["fields"]:
        assert model.model_fields[spec["name"]].description == spec["doc"]
    event = model.model_validate(example_event(event_type))
    assert from_avro_dict(event_type, to_avro_dict(event)) == event


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.id)
def test_examples_use_real_regions_and_valid_niks(event_type: EventType) -> None:
    record = example_event(event_type)
    if record.get("kode_wilayah") is not None:
        assert wilayah.get_wilayah(record["kode_wilayah"]) is not None
    for path in event_type.pii_fields:
        if event_type.pii_fields[path] == "nik" and "[]" not in path and record.get(path):
            info = lokal.parse_nik(record[path], reference_date=dt.date(2026, 1, 1))
            assert info.valid, (path, info.errors)


def test_types_are_mapped_from_avro() -> None:
    model = model_for("dinsos.bansos_disalurkan.v1")
    event = model.model_validate(example_event("dinsos.bansos_disalurkan.v1"))
    assert isinstance(event.id_penyaluran, uuid.UUID)  # type: ignore[attr-defined]
    assert isinstance(event.nilai, Decimal)  # type: ignore[attr-defined]
    assert isinstance(event.program, enum.StrEnum)  # type: ignore[attr-defined]
    when = event.disalurkan_pada  # type: ignore[attr-defined]
    assert when.tzinfo is not None and when.utcoffset() == dt.timedelta(0)
    schema = model.model_json_schema()
    assert schema["properties"]["nik"]["pii"] == "nik"


def test_timestamps_are_normalised_to_utc() -> None:
    record = example_event("dinkes.kunjungan_pasien.v1")
    wib = dt.timezone(dt.timedelta(hours=7))
    record["waktu_kunjungan"] = dt.datetime(2025, 9, 3, 8, 27, tzinfo=wib)
    event = model_for("dinkes.kunjungan_pasien.v1").model_validate(record)
    assert event.waktu_kunjungan == dt.datetime(2025, 9, 3, 1, 27, tzinfo=dt.UTC)  # type: ignore[attr-defined]
    assert event.waktu_kunjungan.tzinfo == dt.UTC  # type: ignore[attr-defined]


def test_same_enum_of_one_opd_is_one_class() -> None:
    kelahiran = model_for("dukcapil.kelahiran_dicatat.v1")
    kematian = model_for("dukcapil.kematian_dicatat.v1")
    assert (
        kelahiran.model_fields["jenis_kelamin"].annotation
        is kematian.model_fields["jenis_kelamin"].annotation
    )


def test_optional_fields_default_to_none() -> None:
    record = example_event("dpmptsp.izin_terbit.v1")
    for name in ("tingkat_risiko", "kbli", "npwp", "nilai_investasi", "nik_penanggung_jawab"):
        del record[name]
    event = model_for("dpmptsp.izin_terbit.v1").model_validate(record)
    assert event.npwp is None  # type: ignore[attr-defined]
    assert to_avro_dict(event)["kbli"] is None


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("nik", "320101", "string_pattern_mismatch"),
        ("tahun_anggaran", 2**31, "less_than_equal"),
        ("nilai", Decimal("1.005"), "decimal_max_places"),
        ("nilai", Decimal("12345678901234567.00"), "decimal_whole_digits"),
        ("program", "BANSOS_FIKTIF", "enum"),
        ("disalurkan_pada", dt.datetime(2025, 1, 1), "timezone_aware"),
        ("id_penyaluran", "bukan-uuid", "uuid_parsing"),
        ("kode_wilayah", "32.73.1", "string_pattern_mismatch"),
    ],
)
def test_field_errors_name_field_rule_and_value(field: str, value: object, rule: str) -> None:
    record = example_event("dinsos.bansos_disalurkan.v1")
    record[field] = value
    with pytest.raises(ValidationError) as info:
        model_for("dinsos.bansos_disalurkan.v1").model_validate(record)
    [error] = field_errors(info.value)
    assert error["field"] == field
    assert error["rule"] == rule
    assert error["message"]
    assert error["value"] == (str(value) if not isinstance(value, str | int) else value)


def test_field_errors_for_nested_missing_and_unknown_fields() -> None:
    record = example_event("dukcapil.kk_diperbarui.v1")
    record["anggota"][1]["nik"] = "12"
    del record["anggota"][2]["hubungan"]
    record["golongan_darah"] = "O"
    with pytest.raises(ValidationError) as info:
        model_for("dukcapil.kk_diperbarui.v1").model_validate(record)
    errors = {(e["field"], e["rule"]): e["value"] for e in field_errors(info.value)}
    assert errors == {
        ("anggota[1].nik", "string_pattern_mismatch"): "12",
        ("anggota[2].hubungan", "missing"): None,
        ("golongan_darah", "extra_forbidden"): "O",
    }


def test_build_nik_follows_the_national_structure() -> None:
    nik = build_nik("32.73.01", dt.date(1990, 5, 15), perempuan=True, nomor_urut=1)
    assert nik == "3273015505900001"
    info = lokal.parse_nik(nik)
    assert info.gender == "P" and info.birth_date == "1990-05-15"
    with pytest.raises(ValueError, match="invalid NIK"):
        build_nik("99.99.99", dt.date(1990, 5, 15), perempuan=False, nomor_urut=1)


def test_examples_are_fresh_copies() -> None:
    first = example_event("dukcapil.kk_diperbarui.v1")
    first["anggota"].clear()
    assert example_event("dukcapil.kk_diperbarui.v1")["anggota"]

"""Typed tables from Avro schemas: column types, masking info, and how tables evolve."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from lintas.consumers.store import (
    Column,
    ExistingColumn,
    SchemaConflict,
    ValueKind,
    alter_table_sql,
    catalog_shape,
    create_table_sql,
    plan_evolution,
    shape_of,
    table_name,
)
from lintas.schemas import load_catalog
from lintas.streams import canonical_schema

CATALOG = load_catalog()


def _types(shape: Any) -> dict[str, str]:
    return {c.name: c.sql_type for c in shape.columns}


def _existing(shape: Any) -> dict[str, ExistingColumn]:
    cols = {
        "event_id": ExistingColumn("event_id", "text"),
        "event_time": ExistingColumn("event_time", "timestamp with time zone"),
        "ingest_time": ExistingColumn("ingest_time", "timestamp with time zone"),
    }
    for c in shape.columns:
        cols[c.name] = ExistingColumn(c.name, c.sql_type, frozenset(c.symbols) or None)
    return cols


def _with_payload(event_type_id: str, change: Any) -> dict[str, Any]:
    """The canonical schema of an event type with its payload record changed by ``change``."""
    schema = copy.deepcopy(canonical_schema(CATALOG.get(event_type_id)))
    payload = next(f for f in schema["fields"] if f["name"] == "payload")
    change(payload["type"]["fields"])
    return schema


def test_logical_types_map_to_postgres_types() -> None:
    bansos = shape_of(
        "dinsos.bansos_disalurkan.v1", canonical_schema(CATALOG.get("dinsos.bansos_disalurkan.v1"))
    )
    types = _types(bansos)
    assert types["id_penyaluran"] == "uuid"
    assert types["nilai"] == "numeric(18,2)"
    assert types["disalurkan_pada"] == "timestamp with time zone"
    assert types["tahap"] == "bigint"  # int takes the wider type: int -> long stays followable
    assert types["program"] == "text"
    assert bansos.column("program").symbols[:2] == ("PKH", "SEMBAKO")  # type: ignore[union-attr]
    kematian = _types(catalog_shape(CATALOG.get("dukcapil.kematian_dicatat.v1")))
    assert kematian["tanggal_kematian"] == "date"
    assert kematian["sebab_kematian"] == "text"  # ["null", enum]


def test_nested_records_and_arrays_are_jsonb_with_their_pii_paths() -> None:
    kk = catalog_shape(CATALOG.get("dukcapil.kk_diperbarui.v1"))
    anggota = kk.column("anggota")
    assert anggota is not None
    assert (anggota.sql_type, anggota.kind) == ("jsonb", ValueKind.JSON)
    assert dict(anggota.nested_pii) == {
        "[].nik": "nik",
        "[].nama": "nama",
        "[].tanggal_lahir": "tanggal_lahir",
    }
    assert kk.subject_field == "nik" and kk.subject_pii == "nik"
    visit = catalog_shape(CATALOG.get("dinkes.kunjungan_pasien.v1"))
    diagnosa = visit.column("diagnosa_icd10")
    assert diagnosa is not None and (diagnosa.sql_type, diagnosa.pii) == ("jsonb", "kesehatan")


def test_canonical_and_catalog_shapes_agree_for_every_event_type() -> None:
    # The sink derives tables from the canonical writer schema, the store's start from the
    # catalog: both must give the same table, or the first record would evolve it.
    for event_type in CATALOG:
        assert shape_of(event_type.id, canonical_schema(event_type)) == catalog_shape(event_type)


def test_table_names_come_from_the_event_type_id() -> None:
    assert table_name("dukcapil.kematian_dicatat.v1") == "dukcapil_kematian_dicatat_v1"
    with pytest.raises(SchemaConflict, match="not an event type id"):
        table_name("Dukcapil.kematian")


def test_a_new_optional_field_adds_a_nullable_column() -> None:
    old = catalog_shape(CATALOG.get("dinsos.bansos_disalurkan.v1"))

    def add(fields: list[dict[str, Any]]) -> None:
        fields.append(
            {"name": "catatan", "type": ["null", "string"], "default": None, "doc": "Note."}
        )

    new = shape_of("dinsos.bansos_disalurkan.v1", _with_payload("dinsos.bansos_disalurkan.v1", add))
    evolution = plan_evolution(new, _existing(old))
    assert [c.name for c in evolution.add] == ["catatan"] and not evolution.checks
    statements = alter_table_sql(new, evolution)
    assert statements[0] == (
        'ALTER TABLE store."dinsos_bansos_disalurkan_v1" ADD COLUMN IF NOT EXISTS "catatan" text'
    )
    assert not plan_evolution(old, _existing(old))  # the same schema needs nothing


def test_new_enum_symbols_widen_the_check_and_keep_the_old_ones() -> None:
    old = catalog_shape(CATALOG.get("dinsos.bansos_disalurkan.v1"))

    def widen(fields: list[dict[str, Any]]) -> None:
        program = next(f for f in fields if f["name"] == "program")
        program["type"]["symbols"] = ["PKH", "ATENSI"]  # one new, several removed

    new = shape_of(
        "dinsos.bansos_disalurkan.v1", _with_payload("dinsos.bansos_disalurkan.v1", widen)
    )
    evolution = plan_evolution(new, _existing(old))
    ((column, symbols),) = evolution.checks
    assert column == "program"
    assert set(symbols) == {*old.column("program").symbols, "ATENSI"}  # type: ignore[union-attr]
    assert any("NOT VALID" in s for s in alter_table_sql(new, evolution))


@pytest.mark.parametrize(
    ("field", "new_type", "reason"),
    [
        ("tahap", "string", "the column is bigint, the new schema needs text"),
        (
            "nilai",
            {"type": "bytes", "logicalType": "decimal", "precision": 20, "scale": 4},
            "the column is numeric(18,2), the new schema needs numeric(20,4)",
        ),
        (
            "disalurkan_pada",
            {"type": "int", "logicalType": "date"},
            "the column is timestamp with time zone, the new schema needs date",
        ),
    ],
)
def test_a_type_change_the_table_cannot_follow_is_a_conflict(
    field: str, new_type: Any, reason: str
) -> None:
    old = catalog_shape(CATALOG.get("dinsos.bansos_disalurkan.v1"))

    def change(fields: list[dict[str, Any]]) -> None:
        next(f for f in fields if f["name"] == field)["type"] = new_type

    new = shape_of(
        "dinsos.bansos_disalurkan.v1", _with_payload("dinsos.bansos_disalurkan.v1", change)
    )
    with pytest.raises(SchemaConflict) as caught:
        plan_evolution(new, _existing(old))
    assert caught.value.column == field
    assert caught.value.reason == reason
    assert "dinsos.bansos_disalurkan.v1" in caught.value.message


def test_int_to_long_keeps_the_column() -> None:
    old = catalog_shape(CATALOG.get("dinsos.bansos_disalurkan.v1"))

    def promote(fields: list[dict[str, Any]]) -> None:
        next(f for f in fields if f["name"] == "tahap")["type"] = "long"

    new = shape_of(
        "dinsos.bansos_disalurkan.v1", _with_payload("dinsos.bansos_disalurkan.v1", promote)
    )
    assert not plan_evolution(new, _existing(old))


def test_a_field_named_like_an_envelope_column_is_a_conflict() -> None:
    def clash(fields: list[dict[str, Any]]) -> None:
        fields.append(
            {"name": "event_time", "type": ["null", "string"], "default": None, "doc": "x"}
        )

    new = shape_of(
        "dinsos.bansos_disalurkan.v1", _with_payload("dinsos.bansos_disalurkan.v1", clash)
    )
    with pytest.raises(SchemaConflict, match="envelope column"):
        plan_evolution(new, {})


def test_create_table_has_the_key_the_checks_and_the_docs() -> None:
    shape = catalog_shape(CATALOG.get("dukcapil.kematian_dicatat.v1"))
    create, comment, *columns = create_table_sql(shape)
    assert "event_id text PRIMARY KEY" in create
    assert "\"jenis_kelamin\" IN ('LAKI_LAKI', 'PEREMPUAN')" in create
    assert comment.startswith('COMMENT ON TABLE store."dukcapil_kematian_dicatat_v1"')
    nik = next(c for c in columns if '"nik" IS' in c)
    assert "[pii: nik]" in nik


def test_a_schema_without_a_payload_record_is_a_conflict() -> None:
    schema = {"type": "record", "name": "X", "fields": [{"name": "a", "type": "string"}]}
    with pytest.raises(SchemaConflict, match="no payload record"):
        shape_of("dinsos.bansos_disalurkan.v1", schema)


def test_named_types_defined_before_the_payload_resolve() -> None:
    enum = {"type": "enum", "name": "Warna", "symbols": ["MERAH", "PUTIH"]}
    schema = {
        "type": "record",
        "name": "Canon",
        "namespace": "id.lintas.canonical.x",
        "fields": [
            {"name": "flag", "type": enum},
            {
                "name": "payload",
                "type": {
                    "type": "record",
                    "name": "Ev",
                    "namespace": "id.lintas.x",
                    "fields": [{"name": "warna", "type": "id.lintas.canonical.x.Warna"}],
                },
            },
        ],
    }
    shape = shape_of("x.ev.v1", schema)
    assert shape.columns == (Column(name="warna", sql_type="text", symbols=("MERAH", "PUTIH")),)

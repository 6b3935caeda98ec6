"""The contract catalog: the shipped .avsc files, lookups and the catalog rules."""

from __future__ import annotations

import json
from pathlib import Path

import fastavro
import pytest

import lintas.schemas
from lintas.exceptions import LintasError
from lintas.schemas import PII_KINDS, CatalogError, EventType, UnknownEventType, load_catalog
from lintas.schemas.catalog import Catalog

CATALOG_DIR = Path(lintas.schemas.__file__).parent / "catalog"
AVSC_FILES = sorted(CATALOG_DIR.glob("*/*.avsc"))

REQUIRED = {
    "dukcapil.kelahiran_dicatat.v1",
    "dukcapil.kematian_dicatat.v1",
    "dukcapil.pindah_datang.v1",
    "dukcapil.kk_diperbarui.v1",
    "dpmptsp.izin_terbit.v1",
    "dpmptsp.izin_dicabut.v1",
    "bapenda.pajak_dibayar.v1",
    "dinsos.bansos_disalurkan.v1",
    "dinkes.kunjungan_pasien.v1",
    "disdik.siswa_terdaftar.v1",
    "diskominfo.pengaduan_diterima.v1",
    "diskominfo.pengaduan_selesai.v1",
}


def _walk_fields(schema, path=""):
    """Yield (path, field) for every field of every record in a raw schema."""
    if isinstance(schema, list):
        for branch in schema:
            yield from _walk_fields(branch, path)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "error"):
            for field in schema["fields"]:
                field_path = f"{path}.{field['name']}" if path else field["name"]
                yield field_path, field
                yield from _walk_fields(field["type"], field_path)
        elif schema.get("type") == "array":
            yield from _walk_fields(schema["items"], path + "[]")
        elif schema.get("type") == "map":
            yield from _walk_fields(schema["values"], path + "{}")


def test_catalog_covers_the_required_event_types() -> None:
    catalog = load_catalog()
    assert {t.id for t in catalog} >= REQUIRED
    assert len(catalog) >= 12
    assert len(catalog.opds) >= 7


@pytest.mark.parametrize("path", AVSC_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_avsc_parses_and_documents_every_field(path: Path) -> None:
    schema = json.loads(path.read_text())
    fastavro.parse_schema(schema)
    assert schema["doc"].strip()
    for field_path, field in _walk_fields(schema):
        assert field.get("doc", "").strip(), f"{path.name}: {field_path} has no doc"
        if "pii" in field:
            assert field["pii"] in PII_KINDS
        if isinstance(field["type"], list) and "null" in field["type"]:
            assert field["type"][0] == "null" and field.get("default", "x") is None, field_path


@pytest.mark.parametrize("event_type", list(load_catalog()), ids=lambda t: t.id)
def test_naming_follows_the_conventions(event_type: EventType) -> None:
    assert event_type.topic == f"opd.{event_type.opd}.{event_type.name}.v{event_type.major}"
    assert event_type.subject == f"{event_type.topic}-value"
    assert event_type.full_name == f"id.lintas.{event_type.opd}.{event_type.record_name}"
    assert event_type.record_name == "".join(p.capitalize() for p in event_type.name.split("_"))
    fields = {f["name"]: f for f in event_type.schema["fields"]}
    assert fields[event_type.subject_field]["type"] == "string"
    assert json.loads(event_type.schema_str) == event_type.schema


@pytest.mark.parametrize("event_type", list(load_catalog()), ids=lambda t: t.id)
def test_citizen_events_carry_nik_and_region(event_type: EventType) -> None:
    names = {f["name"] for f in event_type.schema["fields"]}
    assert "kode_wilayah" in names
    if event_type.subject_field == "nik":
        assert event_type.pii_fields["nik"] == "nik"


def test_lookup_by_id_topic_subject_and_full_name() -> None:
    catalog = load_catalog()
    kematian = catalog.get("dukcapil.kematian_dicatat.v1")
    assert catalog.get("opd.dukcapil.kematian_dicatat.v1") is kematian
    assert catalog.get("opd.dukcapil.kematian_dicatat.v1-value") is kematian
    assert catalog.get("lintas.canonical.dukcapil.kematian_dicatat.v1") is kematian
    assert catalog.get("id.lintas.dukcapil.KematianDicatat") is kematian
    assert catalog.get("dukcapil.kematian_dicatat") is kematian  # newest major
    assert catalog.get(kematian) is kematian
    assert kematian.id in catalog and kematian in catalog
    assert kematian.canonical_topic == "lintas.canonical.dukcapil.kematian_dicatat.v1"
    assert {t.name for t in catalog.by_opd("dukcapil")} == {
        "kelahiran_dicatat",
        "kematian_dicatat",
        "pindah_datang",
        "kk_diperbarui",
    }
    assert catalog.by_opd("dishub") == ()
    assert load_catalog() is catalog  # cached


def test_pii_paths_reach_nested_records() -> None:
    kk = load_catalog().get("dukcapil.kk_diperbarui.v1")
    assert kk.pii_fields["anggota[].nik"] == "nik"
    assert kk.pii_fields["alamat"] == "alamat"
    with pytest.raises(TypeError):
        kk.pii_fields["x"] = "nik"  # type: ignore[index]


def test_unknown_event_type_names_the_value_and_close_matches() -> None:
    with pytest.raises(UnknownEventType) as info:
        load_catalog().get("opd.dukcapil.kematian.v1")
    error = info.value
    assert isinstance(error, LintasError) and isinstance(error, LookupError)
    assert error.value == "opd.dukcapil.kematian.v1"
    assert error.suggestions[0] == "dukcapil.kematian_dicatat.v1"
    assert "dukcapil.kematian_dicatat.v1" in str(error)
    assert not error.retriable


def _write(root: Path, rel: str, schema: object) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(schema if isinstance(schema, str) else json.dumps(schema))


def _good() -> dict:
    return {
        "type": "record",
        "name": "JalanRusakDilaporkan",
        "namespace": "id.lintas.dpupr",
        "doc": "A damaged road was reported.",
        "subject_field": "nomor_laporan",
        "fields": [
            {"name": "nomor_laporan", "type": "string", "doc": "Report number."},
            {
                "name": "pelapor",
                "type": ["null", "string"],
                "default": None,
                "doc": "Name.",
                "pii": "nama",
            },
        ],
    }


def test_a_directory_catalog_loads(tmp_path: Path) -> None:
    _write(tmp_path, "dpupr/jalan_rusak_dilaporkan.v2.avsc", _good())
    catalog = Catalog.from_directory(tmp_path)
    event_type = catalog.get("dpupr.jalan_rusak_dilaporkan.v2")
    assert event_type.topic == "opd.dpupr.jalan_rusak_dilaporkan.v2"
    assert dict(event_type.pii_fields) == {"pelapor": "nama"}


@pytest.mark.parametrize(
    ("rel", "change", "rule"),
    [
        ("DPUPR/jalan_rusak_dilaporkan.v1.avsc", None, "OPD folder"),
        ("dpupr/JalanRusak.v1.avsc", None, "file name"),
        ("dpupr/jalan_rusak_dilaporkan.avsc", None, "file name"),
        ("dpupr/jalan_rusak_dilaporkan.v1.avsc", {"name": "Other"}, "must be named"),
        ("dpupr/jalan_rusak_dilaporkan.v1.avsc", {"namespace": "id.lintas.x"}, "namespace"),
        ("dpupr/jalan_rusak_dilaporkan.v1.avsc", {"doc": ""}, "doc"),
        ("dpupr/jalan_rusak_dilaporkan.v1.avsc", {"subject_field": "nope"}, "subject_field"),
        ("dpupr/jalan_rusak_dilaporkan.v1.avsc", {"subject_field": "pelapor"}, "non-null"),
        ("dpupr/jalan_rusak_dilaporkan.v1.avsc", "no-doc", "'nomor_laporan' needs a doc"),
        ("dpupr/jalan_rusak_dilaporkan.v1.avsc", "bad-pii", "pii kind 'rahasia'"),
        ("dpupr/jalan_rusak_dilaporkan.v1.avsc", "bad-json", "not valid JSON"),
        ("dpupr/jalan_rusak_dilaporkan.v1.avsc", "bad-type", "undefined type 'strnig'"),
        ("dpupr/jalan_rusak_dilaporkan.v1.avsc", "bad-avro", "fastavro cannot parse"),
    ],
)
def test_catalog_rules_are_enforced(tmp_path: Path, rel: str, change: object, rule: str) -> None:
    schema: object = _good()
    assert isinstance(schema, dict)
    if isinstance(change, dict):
        schema.update(change)
    elif change == "no-doc":
        del schema["fields"][0]["doc"]
    elif change == "bad-pii":
        schema["fields"][1]["pii"] = "rahasia"
    elif change == "bad-json":
        schema = "{not json"
    elif change == "bad-type":
        schema["fields"][1]["type"] = "strnig"
    elif change == "bad-avro":
        schema["fields"][1]["type"] = {"type": "fixed", "name": "Kode"}  # no size
    _write(tmp_path, rel, schema)
    with pytest.raises(CatalogError) as info:
        Catalog.from_directory(tmp_path)
    assert rule in str(info.value)
    assert info.value.path.endswith(Path(rel).name)


def test_public_api_is_exported_and_documented() -> None:
    for name in lintas.schemas.__all__:
        obj = getattr(lintas.schemas, name)
        if callable(obj) and not isinstance(obj, frozenset):
            assert obj.__doc__, f"{name} has no docstring"
    assert len(set(lintas.schemas.__all__)) == len(lintas.schemas.__all__)

"""Compatibility checker: fixed old/new schema pairs, one or more per resolution rule.

Laid out like karapace's ``tests/unit/compatibility/test_compatibility.py``: each case is a
reader (the schema data is read with) and a writer (the schema it was written with).
"""

from __future__ import annotations

import io
from typing import Any

import fastavro
import pytest

from lintas.exceptions import LintasError
from lintas.schemas.compatibility import (
    CompatibilityMode,
    CompatibilityResult,
    Incompatibility,
    IncompatibilityRule,
    InvalidSchema,
    check_compatibility,
    check_reader_writer,
)
from lintas.schemas.exceptions import SchemaError

Rule = IncompatibilityRule


def record(name: str, *fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "record", "name": name, "fields": list(fields), **extra}


def field(name: str, type_: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


def one_field(type_: Any, **extra: Any) -> dict[str, Any]:
    """A record ``Penduduk`` with the single field ``x``."""
    return record("Penduduk", field("x", type_, **extra))


def assert_compatible(reader: Any, writer: Any) -> None:
    result = check_reader_writer(reader, writer)
    assert result.is_compatible, result.messages
    assert result.incompatibilities == ()


def assert_incompatible(reader: Any, writer: Any, *expected: tuple[Rule, str]) -> None:
    """Assert exactly the ``(rule, path)`` pairs are reported, in this order."""
    result = check_reader_writer(reader, writer)
    assert not result.is_compatible
    assert [(i.rule, i.path) for i in result.incompatibilities] == list(expected)


def roundtrip(reader: Any, writer: Any, datum: Any) -> Any:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(writer), datum)
    buf.seek(0)
    return fastavro.schemaless_reader(
        buf, fastavro.parse_schema(writer), fastavro.parse_schema(reader)
    )


# --- Record fields -------------------------------------------------------------------------

NIK = field("nik", "string")
NAMA = field("nama", "string")


def test_identical_records_are_compatible() -> None:
    schema = record("Penduduk", NIK, NAMA)
    assert_compatible(schema, schema)


def test_reader_adds_field_with_default() -> None:
    assert_compatible(
        record("Penduduk", NIK, field("agama", "string", default="")), record("Penduduk", NIK)
    )


def test_reader_adds_nullable_field_with_null_default() -> None:
    assert_compatible(
        record("Penduduk", NIK, field("email", ["null", "string"], default=None)),
        record("Penduduk", NIK),
    )


def test_reader_adds_field_without_default() -> None:
    assert_incompatible(
        record("Penduduk", NIK, NAMA),
        record("Penduduk", NIK),
        (Rule.READER_FIELD_MISSING_DEFAULT_VALUE, "/fields/nama"),
    )


def test_missing_default_message_names_field_path_and_rule() -> None:
    result = check_reader_writer(record("Penduduk", NIK, NAMA), record("Penduduk", NIK))
    (incompatibility,) = result.incompatibilities
    assert "'nama'" in incompatibility.message
    assert "/fields/nama" in incompatibility.message
    assert "READER_FIELD_MISSING_DEFAULT_VALUE" in incompatibility.message
    assert str(incompatibility) == incompatibility.message
    assert result.messages == [incompatibility.message]


@pytest.mark.parametrize("default", [{"default": ""}, {}], ids=["with_default", "no_default"])
def test_writer_field_absent_in_reader_is_ignored(default: dict[str, Any]) -> None:
    """BACKWARD view of removing a field: the new reader skips it, default or not."""
    assert_compatible(
        record("Penduduk", NIK), record("Penduduk", NIK, field("nama", "string", **default))
    )


def test_removed_field_with_default_is_readable_by_the_old_schema() -> None:
    """FORWARD view of removing a field: the old reader needs a default for it."""
    old = record("Penduduk", NIK, field("nama", "string", default=""))
    new = record("Penduduk", NIK)
    assert_compatible(reader=old, writer=new)


def test_removed_field_without_default_is_not_readable_by_the_old_schema() -> None:
    assert_incompatible(
        record("Penduduk", NIK, NAMA),
        record("Penduduk", NIK),
        (Rule.READER_FIELD_MISSING_DEFAULT_VALUE, "/fields/nama"),
    )


def test_field_renamed_with_alias() -> None:
    reader = record("Penduduk", field("nomor_induk", "string", aliases=["nik"]))
    assert_compatible(reader, record("Penduduk", NIK))
    assert roundtrip(reader, record("Penduduk", NIK), {"nik": "3201"}) == {"nomor_induk": "3201"}


def test_field_renamed_without_alias() -> None:
    assert_incompatible(
        record("Penduduk", field("nomor_induk", "string")),
        record("Penduduk", NIK),
        (Rule.READER_FIELD_MISSING_DEFAULT_VALUE, "/fields/nomor_induk"),
    )


def test_field_order_does_not_matter() -> None:
    assert_compatible(record("Penduduk", NAMA, NIK), record("Penduduk", NIK, NAMA))


def test_every_incompatibility_is_reported() -> None:
    assert_incompatible(
        record("Penduduk", field("nik", "int"), NAMA, field("umur", "int")),
        record("Penduduk", NIK),
        (Rule.TYPE_MISMATCH, "/fields/nik"),
        (Rule.READER_FIELD_MISSING_DEFAULT_VALUE, "/fields/nama"),
        (Rule.READER_FIELD_MISSING_DEFAULT_VALUE, "/fields/umur"),
    )


# --- Primitive promotions ------------------------------------------------------------------

PROMOTIONS = [
    ("int", "long"),
    ("int", "float"),
    ("int", "double"),
    ("long", "float"),
    ("long", "double"),
    ("float", "double"),
    ("string", "bytes"),
    ("bytes", "string"),
]
FORBIDDEN_REVERSE = [(w, r) for r, w in PROMOTIONS if (w, r) not in PROMOTIONS]


@pytest.mark.parametrize(("writer", "reader"), PROMOTIONS)
def test_promotion(writer: str, reader: str) -> None:
    assert_compatible(one_field(reader), one_field(writer))


@pytest.mark.parametrize(("writer", "reader"), FORBIDDEN_REVERSE)
def test_reverse_promotion_is_forbidden(writer: str, reader: str) -> None:
    assert_incompatible(one_field(reader), one_field(writer), (Rule.TYPE_MISMATCH, "/fields/x"))


def test_string_and_bytes_read_each_other() -> None:
    assert roundtrip(one_field("bytes"), one_field("string"), {"x": "abc"}) == {"x": b"abc"}
    assert roundtrip(one_field("string"), one_field("bytes"), {"x": b"abc"}) == {"x": "abc"}


@pytest.mark.parametrize(
    ("reader", "writer"),
    [
        ("int", "boolean"),
        ("string", "int"),
        ("int", "null"),
        ("boolean", "string"),
        ("null", "int"),
    ],
)
def test_unrelated_primitives_mismatch(reader: str, writer: str) -> None:
    assert_incompatible(one_field(reader), one_field(writer), (Rule.TYPE_MISMATCH, "/fields/x"))


def test_top_level_primitives_and_json_text() -> None:
    assert_compatible("long", "int")
    assert_compatible('"string"', '{"type": "bytes"}')
    assert_incompatible("int", "long", (Rule.TYPE_MISMATCH, "/"))
    assert_compatible("null", "null")
    assert_compatible(["null", "string"], "null")
    assert_compatible(
        '["null", {"type": "array", "items": "int"}]', '{"type": "array", "items": "int"}'
    )


def test_type_mismatch_message_names_both_types() -> None:
    (incompatibility,) = check_reader_writer(
        one_field("int"), one_field("string")
    ).incompatibilities
    assert "int" in incompatibility.message
    assert "string" in incompatibility.message
    assert "TYPE_MISMATCH" in incompatibility.message


# --- Logical types -------------------------------------------------------------------------


def test_logical_types_are_ignored_when_the_underlying_type_matches() -> None:
    date = {"type": "int", "logicalType": "date"}
    assert_compatible(one_field(date), one_field("int"))
    assert_compatible(one_field("int"), one_field(date))
    timestamp = {"type": "long", "logicalType": "timestamp-millis"}
    assert_compatible(
        one_field(timestamp), one_field({"type": "long", "logicalType": "time-micros"})
    )


def test_logical_types_follow_the_underlying_promotions() -> None:
    date = {"type": "int", "logicalType": "date"}
    timestamp = {"type": "long", "logicalType": "timestamp-millis"}
    assert_compatible(one_field(timestamp), one_field(date))
    assert_incompatible(one_field(date), one_field(timestamp), (Rule.TYPE_MISMATCH, "/fields/x"))


def test_logical_type_with_another_underlying_type_mismatches() -> None:
    uuid = {"type": "string", "logicalType": "uuid"}
    assert_incompatible(one_field("int"), one_field(uuid), (Rule.TYPE_MISMATCH, "/fields/x"))


# --- Enums ---------------------------------------------------------------------------------


def status(*symbols: str, **extra: Any) -> dict[str, Any]:
    return {"type": "enum", "name": "Status", "symbols": list(symbols), **extra}


def test_enum_symbol_added_in_reader() -> None:
    assert_compatible(
        one_field(status("HIDUP", "MATI", "PINDAH")), one_field(status("HIDUP", "MATI"))
    )


def test_enum_symbol_removed_in_reader() -> None:
    result = check_reader_writer(one_field(status("HIDUP")), one_field(status("HIDUP", "MATI")))
    assert [(i.rule, i.path) for i in result.incompatibilities] == [
        (Rule.MISSING_ENUM_SYMBOLS, "/fields/x")
    ]
    assert "MATI" in result.messages[0]


def test_enum_symbol_removed_but_reader_has_default() -> None:
    reader = one_field(status("TIDAK_DIKETAHUI", "HIDUP", default="TIDAK_DIKETAHUI"))
    writer = one_field(status("HIDUP", "MATI"))
    assert_compatible(reader, writer)
    assert roundtrip(reader, writer, {"x": "MATI"}) == {"x": "TIDAK_DIKETAHUI"}


def test_enum_added_symbol_with_default_read_by_old_reader_without_default() -> None:
    """FORWARD view of adding a symbol: the old reader lacks it and has no default."""
    assert_incompatible(
        one_field(status("HIDUP", "MATI")),
        one_field(status("HIDUP", "MATI", "PINDAH", default="HIDUP")),
        (Rule.MISSING_ENUM_SYMBOLS, "/fields/x"),
    )


def test_enum_renamed() -> None:
    renamed = {"type": "enum", "name": "StatusHidup", "symbols": ["HIDUP"]}
    assert_incompatible(
        one_field(renamed), one_field(status("HIDUP")), (Rule.NAME_MISMATCH, "/fields/x")
    )
    assert_compatible(one_field({**renamed, "aliases": ["Status"]}), one_field(status("HIDUP")))


# --- Unions --------------------------------------------------------------------------------


def test_union_branch_added_in_reader() -> None:
    assert_compatible(one_field(["null", "string", "int"]), one_field(["null", "string"]))


def test_union_branch_removed_in_reader() -> None:
    assert_incompatible(
        one_field(["null", "string"]),
        one_field(["null", "int", "string"]),
        (Rule.MISSING_UNION_BRANCH, "/fields/x/1"),
    )


def test_union_branch_reordered() -> None:
    assert_compatible(one_field(["string", "null"]), one_field(["null", "string"]))


def test_union_branch_promoted() -> None:
    assert_compatible(one_field(["null", "long"]), one_field(["null", "int"]))
    assert_incompatible(
        one_field(["null", "int"]),
        one_field(["null", "long"]),
        (Rule.MISSING_UNION_BRANCH, "/fields/x/1"),
    )


def test_non_union_to_union() -> None:
    assert_compatible(one_field(["null", "string"]), one_field("string"))
    assert_compatible(one_field(["null", "long"]), one_field("int"))


def test_non_union_to_union_without_its_type() -> None:
    assert_incompatible(
        one_field(["null", "int"]), one_field("string"), (Rule.MISSING_UNION_BRANCH, "/fields/x")
    )


def test_union_to_non_union_checks_every_writer_branch() -> None:
    assert_incompatible(
        one_field("string"), one_field(["null", "string"]), (Rule.TYPE_MISMATCH, "/fields/x/0")
    )


def test_union_to_non_union_when_every_branch_is_readable() -> None:
    assert_compatible(one_field("long"), one_field(["int"]))
    assert_compatible(one_field("double"), one_field(["int", "float"]))


def test_union_of_records_checks_the_matching_branch() -> None:
    alamat_v1 = record("Alamat", field("jalan", "string"))
    alamat_v2 = record("Alamat", field("jalan", "string"), field("rt", "int"))
    assert_incompatible(
        one_field(["null", alamat_v2]),
        one_field(["null", alamat_v1]),
        (Rule.READER_FIELD_MISSING_DEFAULT_VALUE, "/fields/x/1/fields/rt"),
    )


def test_union_with_named_reference() -> None:
    alamat = record("Alamat", field("jalan", "string"))
    schema = record("Penduduk", field("rumah", alamat), field("kantor", ["null", "Alamat"]))
    assert_compatible(schema, schema)


# --- Named types: records and fixed -------------------------------------------------------


def test_nested_record_field_change_reports_full_path() -> None:
    def penduduk(kode_wilayah: Any) -> dict[str, Any]:
        alamat = record("Alamat", field("kode_wilayah", kode_wilayah))
        payload = record("Payload", field("alamat", alamat))
        return record("Penduduk", field("payload", payload))

    assert_compatible(penduduk("long"), penduduk("int"))
    assert_incompatible(
        penduduk("int"),
        penduduk("string"),
        (Rule.TYPE_MISMATCH, "/fields/payload/fields/alamat/fields/kode_wilayah"),
    )


def test_record_renamed() -> None:
    assert_incompatible(record("Warga", NIK), record("Penduduk", NIK), (Rule.NAME_MISMATCH, "/"))


@pytest.mark.parametrize("alias", ["Penduduk", "id.go.dukcapil.Penduduk"])
def test_record_renamed_with_alias(alias: str) -> None:
    reader = record("Warga", NIK, namespace="id.go.dukcapil", aliases=[alias])
    writer = record("Penduduk", NIK, namespace="id.go.dukcapil")
    assert_compatible(reader, writer)
    assert roundtrip(reader, writer, {"nik": "3201"}) == {"nik": "3201"}


def test_record_moved_to_another_namespace() -> None:
    """Names are compared unqualified, as Avro's Java checker and fastavro do."""
    assert_compatible(
        record("Penduduk", NIK, namespace="id.go.kemendagri"),
        record("Penduduk", NIK, namespace="id.go.dukcapil"),
    )


def test_record_versus_non_record() -> None:
    assert_incompatible(
        one_field(record("Alamat", NIK)), one_field("string"), (Rule.TYPE_MISMATCH, "/fields/x")
    )


def fixed(name: str, size: int) -> dict[str, Any]:
    return {"type": "fixed", "name": name, "size": size}


def test_fixed_same() -> None:
    assert_compatible(one_field(fixed("Md5", 16)), one_field(fixed("Md5", 16)))


def test_fixed_size_change() -> None:
    result = check_reader_writer(one_field(fixed("Md5", 16)), one_field(fixed("Md5", 32)))
    assert [(i.rule, i.path) for i in result.incompatibilities] == [
        (Rule.FIXED_SIZE_MISMATCH, "/fields/x")
    ]
    assert "16" in result.messages[0] and "32" in result.messages[0]


def test_fixed_renamed() -> None:
    assert_incompatible(
        one_field(fixed("Sha", 16)), one_field(fixed("Md5", 16)), (Rule.NAME_MISMATCH, "/fields/x")
    )


def test_fixed_decimal_is_its_fixed() -> None:
    decimal = {**fixed("Uang", 8), "logicalType": "decimal", "precision": 18, "scale": 2}
    assert_compatible(one_field(decimal), one_field(fixed("Uang", 8)))


# --- Arrays and maps -----------------------------------------------------------------------


def anggota(*fields: dict[str, Any]) -> dict[str, Any]:
    return record("Anggota", NIK, *fields)


def test_array_items_promoted() -> None:
    assert_compatible(
        one_field({"type": "array", "items": "long"}), one_field({"type": "array", "items": "int"})
    )


def test_array_of_records() -> None:
    def keluarga(member: dict[str, Any]) -> dict[str, Any]:
        return record("Keluarga", field("anggota", {"type": "array", "items": member}))

    assert_compatible(
        keluarga(anggota(field("hubungan", "string", default=""))), keluarga(anggota())
    )
    assert_incompatible(
        keluarga(anggota(field("hubungan", "string"))),
        keluarga(anggota()),
        (Rule.READER_FIELD_MISSING_DEFAULT_VALUE, "/fields/anggota/items/fields/hubungan"),
    )


def test_map_of_records() -> None:
    def keluarga(member: dict[str, Any]) -> dict[str, Any]:
        return record("Keluarga", field("anggota", {"type": "map", "values": member}))

    assert_compatible(keluarga(anggota()), keluarga(anggota(field("umur", "int"))))
    assert_incompatible(
        keluarga(anggota(field("umur", "int"))),
        keluarga(anggota(field("umur", "long"))),
        (Rule.TYPE_MISMATCH, "/fields/anggota/values/fields/umur"),
    )


def test_array_versus_map() -> None:
    assert_incompatible(
        one_field({"type": "array", "items": "string"}),
        one_field({"type": "map", "values": "string"}),
        (Rule.TYPE_MISMATCH, "/fields/x"),
    )


# --- Recursive and shared named types ------------------------------------------------------


def linked_list(*extra: dict[str, Any], value: str = "int") -> dict[str, Any]:
    return record("Node", field("value", value), field("next", ["null", "Node"]), *extra)


def test_recursive_schema_is_compatible_with_itself() -> None:
    assert_compatible(linked_list(), linked_list())


def test_recursive_schema_promotion() -> None:
    assert_compatible(linked_list(value="long"), linked_list())
    datum = {"value": 1, "next": {"value": 2, "next": None}}
    assert roundtrip(linked_list(value="long"), linked_list(), datum) == datum


def test_recursive_schema_change_is_reported_once() -> None:
    assert_incompatible(
        linked_list(field("label", "string")),
        linked_list(),
        (Rule.READER_FIELD_MISSING_DEFAULT_VALUE, "/fields/label"),
    )
    assert_incompatible(
        linked_list(value="int"), linked_list(value="long"), (Rule.TYPE_MISMATCH, "/fields/value")
    )


def test_mutually_recursive_schemas() -> None:
    def tree(leaf: str) -> dict[str, Any]:
        children = {"type": "array", "items": "Tree"}
        forest = record("Forest", field("trees", children))
        return record("Tree", field("leaf", leaf), field("forest", ["null", forest]))

    assert_compatible(tree("long"), tree("int"))
    assert_incompatible(tree("int"), tree("long"), (Rule.TYPE_MISMATCH, "/fields/leaf"))


def test_named_references_resolve_through_namespaces() -> None:
    alamat = record("Alamat", field("jalan", "string"), namespace="id.go.dukcapil.common")

    def penduduk(second_ref: str) -> dict[str, Any]:
        return record(
            "Penduduk",
            field("rumah", alamat),
            field("kantor", second_ref),
            namespace="id.go.dukcapil",
        )

    full = penduduk("id.go.dukcapil.common.Alamat")
    assert_compatible(full, full)
    nested_ns = record(
        "Penduduk",
        field("rumah", record("Alamat", field("jalan", "string"))),
        field("kantor", "Alamat"),  # resolves to id.go.dukcapil.Alamat
        namespace="id.go.dukcapil",
    )
    assert_compatible(nested_ns, full)


# --- Invalid schemas -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param({"type": "nope"}, id="unknown_type"),
        pytest.param(record("R", field("x", "Missing")), id="unknown_reference"),
        pytest.param({"type": "record", "name": "R"}, id="record_without_fields"),
        pytest.param(record("R", field("x", "int"), field("x", "long")), id="duplicate_field"),
        pytest.param(one_field(["int", "int"]), id="duplicate_union_branch"),
        pytest.param(one_field(["null", ["int"]]), id="nested_union"),
        pytest.param(one_field("int", default="satu"), id="bad_default"),
        pytest.param(status("A", "A"), id="duplicate_enum_symbol"),
        pytest.param({**status(), "symbols": "AB"}, id="symbols_not_a_list"),
        pytest.param(record("R", field("x", "int", aliases="y")), id="aliases_not_a_list"),
        pytest.param(status("A", default="B"), id="enum_default_not_a_symbol"),
        pytest.param({"type": "fixed", "name": "F"}, id="fixed_without_size"),
        pytest.param(42, id="not_a_schema"),
        pytest.param("{not json", id="bad_json_text"),
        pytest.param("true", id="json_literal_is_not_a_type_name"),
        pytest.param(
            {"type": "record", "name": "R", "fields": [{"name": "x"}]}, id="field_without_type"
        ),
    ],
)
def test_invalid_schema_is_rejected(schema: Any) -> None:
    with pytest.raises(InvalidSchema) as excinfo:
        check_reader_writer(schema, "int")
    assert excinfo.value.reason
    assert excinfo.value.schema_label == "reader schema"
    assert "not a valid Avro schema" in str(excinfo.value)


def test_invalid_schema_is_a_lintas_error() -> None:
    assert issubclass(InvalidSchema, SchemaError)
    assert issubclass(InvalidSchema, LintasError)
    with pytest.raises(InvalidSchema, match="Writer schema"):
        check_reader_writer("int", {"type": "nope"})


# --- Modes ---------------------------------------------------------------------------------

V1 = record("Penduduk", NIK)
WITH_DEFAULT = record("Penduduk", NIK, field("nama", "string", default=""))
WITHOUT_DEFAULT = record("Penduduk", NIK, NAMA)


def rules_of(result: CompatibilityResult) -> list[tuple[Rule, str, int | None, str | None]]:
    return [(i.rule, i.path, i.version, i.direction) for i in result.incompatibilities]


def test_mode_values_are_confluents() -> None:
    assert [mode.value for mode in CompatibilityMode] == [
        "NONE",
        "BACKWARD",
        "BACKWARD_TRANSITIVE",
        "FORWARD",
        "FORWARD_TRANSITIVE",
        "FULL",
        "FULL_TRANSITIVE",
    ]
    assert CompatibilityMode("FULL") is CompatibilityMode.FULL
    assert CompatibilityMode.FULL == "FULL"


def test_backward_new_schema_reads_latest() -> None:
    assert check_compatibility(WITH_DEFAULT, [V1], CompatibilityMode.BACKWARD).is_compatible
    result = check_compatibility(WITHOUT_DEFAULT, [V1], CompatibilityMode.BACKWARD)
    assert rules_of(result) == [
        (Rule.READER_FIELD_MISSING_DEFAULT_VALUE, "/fields/nama", 1, "BACKWARD")
    ]
    assert "version 1" in result.messages[0]
    assert "BACKWARD" in result.messages[0]


def test_forward_latest_reads_new_schema() -> None:
    # Adding a field without default is fine FORWARD: the old reader skips it ...
    assert check_compatibility(WITHOUT_DEFAULT, [V1], CompatibilityMode.FORWARD).is_compatible
    # ... but removing one the old reader needs without default is not.
    result = check_compatibility(V1, [WITHOUT_DEFAULT], CompatibilityMode.FORWARD)
    assert rules_of(result) == [
        (Rule.READER_FIELD_MISSING_DEFAULT_VALUE, "/fields/nama", 1, "FORWARD")
    ]
    assert "Version 1 cannot read data written with the new schema" in result.messages[0]


def test_full_checks_both_directions() -> None:
    assert check_compatibility(WITH_DEFAULT, [V1], CompatibilityMode.FULL).is_compatible
    assert check_compatibility(V1, [WITH_DEFAULT], CompatibilityMode.FULL).is_compatible
    result = check_compatibility(WITHOUT_DEFAULT, [V1], CompatibilityMode.FULL)
    assert rules_of(result) == [
        (Rule.READER_FIELD_MISSING_DEFAULT_VALUE, "/fields/nama", 1, "BACKWARD")
    ]
    result = check_compatibility(one_field("long"), [one_field("int")], CompatibilityMode.FULL)
    assert rules_of(result) == [(Rule.TYPE_MISMATCH, "/fields/x", 1, "FORWARD")]


def test_non_transitive_modes_only_check_the_latest() -> None:
    broken = record("Penduduk", field("nik", "int"))
    for mode in (CompatibilityMode.BACKWARD, CompatibilityMode.FORWARD, CompatibilityMode.FULL):
        assert check_compatibility(V1, [broken, V1], mode).is_compatible


def test_backward_transitive_across_three_versions() -> None:
    v1 = record("Penduduk", NIK, field("umur", "string"))
    v2 = record("Penduduk", NIK)  # drops umur: v2 reads v1
    new = record("Penduduk", NIK, field("umur", "int", default=0))  # reads v2, not v1
    existing = [v1, v2]
    assert check_compatibility(v2, [v1], CompatibilityMode.BACKWARD).is_compatible
    assert check_compatibility(new, existing, CompatibilityMode.BACKWARD).is_compatible
    result = check_compatibility(new, existing, CompatibilityMode.BACKWARD_TRANSITIVE)
    assert rules_of(result) == [(Rule.TYPE_MISMATCH, "/fields/umur", 1, "BACKWARD")]


def test_forward_transitive_across_three_versions() -> None:
    v1 = record("Penduduk", NIK, NAMA)
    v2 = record("Penduduk", NIK, field("nama", "string", default=""))  # v1 reads v2
    new = record("Penduduk", NIK)  # v2 reads it with the default; v1 cannot
    existing = [v1, v2]
    assert check_compatibility(v2, [v1], CompatibilityMode.FORWARD).is_compatible
    assert check_compatibility(new, existing, CompatibilityMode.FORWARD).is_compatible
    result = check_compatibility(new, existing, CompatibilityMode.FORWARD_TRANSITIVE)
    assert rules_of(result) == [
        (Rule.READER_FIELD_MISSING_DEFAULT_VALUE, "/fields/nama", 1, "FORWARD")
    ]


def test_full_transitive_across_three_versions() -> None:
    v1 = record("Penduduk", NIK, NAMA)
    v2 = record("Penduduk", NIK, field("nama", "string", default=""))
    new = record("Penduduk", NIK)
    existing = [v1, v2]
    assert check_compatibility(v2, [v1], CompatibilityMode.FULL).is_compatible
    assert check_compatibility(new, existing, CompatibilityMode.FULL).is_compatible
    result = check_compatibility(new, existing, CompatibilityMode.FULL_TRANSITIVE)
    assert rules_of(result) == [
        (Rule.READER_FIELD_MISSING_DEFAULT_VALUE, "/fields/nama", 1, "FORWARD")
    ]


def test_transitive_reports_every_failing_version() -> None:
    old = [one_field("string"), one_field("boolean"), one_field("int")]
    result = check_compatibility(one_field("long"), old, CompatibilityMode.BACKWARD_TRANSITIVE)
    assert [i.version for i in result.incompatibilities] == [1, 2]


def test_version_numbers_label_the_messages() -> None:
    result = check_compatibility(
        WITHOUT_DEFAULT, [V1, V1], CompatibilityMode.BACKWARD_TRANSITIVE, versions=[3, 7]
    )
    assert [i.version for i in result.incompatibilities] == [3, 7]
    assert "version 7" in result.messages[1]
    with pytest.raises(ValueError, match="version numbers"):
        check_compatibility(V1, [V1], CompatibilityMode.BACKWARD, versions=[1, 2])


def test_none_mode_is_always_compatible_but_validates_the_new_schema() -> None:
    assert check_compatibility(
        one_field("string"), [one_field("int")], CompatibilityMode.NONE
    ).is_compatible
    with pytest.raises(InvalidSchema, match="New schema"):
        check_compatibility({"type": "nope"}, [V1], CompatibilityMode.NONE)


def test_no_existing_versions_is_compatible() -> None:
    for mode in CompatibilityMode:
        assert check_compatibility(V1, [], mode).is_compatible


def test_mode_given_as_string() -> None:
    assert not check_compatibility(WITHOUT_DEFAULT, [V1], "BACKWARD").is_compatible  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        check_compatibility(V1, [V1], "SIDEWAYS")  # type: ignore[arg-type]


def test_invalid_existing_version_is_named() -> None:
    with pytest.raises(InvalidSchema, match="Version 2"):
        check_compatibility(V1, [V1, {"type": "nope"}], CompatibilityMode.BACKWARD)


# --- Result objects ------------------------------------------------------------------------


def test_result_is_consistent_and_frozen() -> None:
    item = Incompatibility("/", Rule.TYPE_MISMATCH, "boom (TYPE_MISMATCH)")
    assert CompatibilityResult.from_incompatibilities([item]) == CompatibilityResult(False, (item,))
    with pytest.raises(ValueError):
        CompatibilityResult(True, (item,))
    with pytest.raises(ValueError):
        CompatibilityResult(False, ())
    with pytest.raises(AttributeError):
        item.path = "/fields/x"  # type: ignore[misc]


def test_rule_codes_are_confluents() -> None:
    assert {rule.value for rule in Rule} == {
        "NAME_MISMATCH",
        "FIXED_SIZE_MISMATCH",
        "MISSING_ENUM_SYMBOLS",
        "READER_FIELD_MISSING_DEFAULT_VALUE",
        "TYPE_MISMATCH",
        "MISSING_UNION_BRANCH",
    }

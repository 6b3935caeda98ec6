"""The directory file without a database: YAML in and out, its errors, and the import plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lintas.directory import (
    ChangeAction,
    DirectoryData,
    EntryKind,
    FieldChange,
    ImportPlan,
    InvalidEntry,
    Opd,
    Subscription,
    SubscriptionFilter,
    diff_directory,
    dump_yaml,
    load_yaml,
)
from lintas.schemas import load_catalog

SAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "directory.yaml"
CATALOG = load_catalog()
KEMATIAN = "dukcapil.kematian_dicatat.v1"


def _sample() -> DirectoryData:
    return load_yaml(SAMPLE.read_text(encoding="utf-8"))


def _problems(text: str) -> dict[str, str]:
    with pytest.raises(InvalidEntry) as exc:
        load_yaml(text)
    assert exc.value.kind == "directory file"
    return {p.field: p.rule for p in exc.value.problems}


def _replace(data: DirectoryData, section: str, key: str, **changes: Any) -> DirectoryData:
    """``data`` with one entry changed (entries are frozen)."""
    entries = getattr(data, section)
    ident = {"opds": "code", "applications": "id"}.get(section, "name")
    assert any(getattr(e, ident) == key for e in entries)
    new = tuple(
        e.model_validate({**e.model_dump(), **changes}) if getattr(e, ident) == key else e
        for e in entries
    )
    return data.model_copy(update={section: new})


def _without(data: DirectoryData, section: str, key: str) -> DirectoryData:
    ident = {"opds": "code", "applications": "id"}.get(section, "name")
    kept = tuple(e for e in getattr(data, section) if getattr(e, ident) != key)
    return data.model_copy(update={section: kept})


def _actions(plan: ImportPlan) -> dict[tuple[str, str], str]:
    """Every change that is not 'unchanged', as (kind, key) -> action."""
    return {
        (c.kind.value, c.key): c.action.value
        for c in plan.changes
        if c.action is not ChangeAction.UNCHANGED
    }


# -- the sample file --------------------------------------------------------------------


def test_the_sample_file_is_a_valid_directory_of_kota_bandung() -> None:
    data = _sample()
    assert {o.code for o in data.opds} == {
        "dukcapil", "dinsos", "dinkes", "dpmptsp", "bapenda", "disdik", "diskominfo",
    }  # fmt: skip
    assert {o.pemda_code for o in data.opds} == {"32.73"}
    produced = {t for a in data.applications for t in a.produces}
    assert produced <= {et.id for et in CATALOG}
    assert all(s.purpose and "27/2022" in s.purpose for s in data.subscriptions)
    assert all("*" not in s.fields for s in data.subscriptions)  # minimal field lists
    # Valid against the catalog too: everything is created, nothing refused.
    plan = diff_directory(DirectoryData(), data, catalog=CATALOG)
    counts = plan.counts()
    assert counts["create"] == 7 + len(data.applications) + len(data.subscribers) + len(
        data.subscriptions
    )
    assert counts["create"] == len(plan.changes)


def test_export_format_is_sorted_short_and_round_trips_exactly() -> None:
    data = _sample()
    text = dump_yaml(data)
    assert text.startswith("# Lintas directory")
    assert "Format version 1" in text.splitlines()[1]
    assert "\nversion: 1\n" in text
    assert load_yaml(text) == data
    assert dump_yaml(load_yaml(text)) == text  # stable: a second export is identical
    # Defaults and None are left out.
    assert "null" not in text and "status: planned" not in text
    assert "status: active" not in text and "filter: {}" not in text
    # Entries by key, whatever the order of the input.
    shuffled = data.model_copy(update={"opds": tuple(reversed(data.opds))})
    assert dump_yaml(shuffled) == text
    codes = [line.split(": ")[1] for line in text.splitlines() if line.startswith("  - code: ")]
    assert codes == sorted(codes)


def test_tricky_values_round_trip() -> None:
    opd = Opd(
        code="dukcapil",
        name="Disdukcapil: yes # no",
        pemda_name="null",
        pemda_code="32.73",
        contact="Line one\nline two:  two spaces\n- not a list\u2028NEL\x85end",
    )
    sub = Subscription(
        name="dinsos-kematian",
        subscriber="dinsos",
        event_types=(KEMATIAN,),
        filter=SubscriptionFilter(
            equals={
                "sebab_kematian": "yes",
                "nomor_kk": "0012",
                "tempat_kematian": None,
                "nik": True,
                "jenis_kelamin": 1.0,
                "nama": 1,
            },
            kode_wilayah_prefix="32.73.01",
        ),
        fields=("nik",),
        purpose="x" * 150 + " UU 27/2022 — pelindungan data pribadi, 'quoted' \"double\"",
    )
    data = DirectoryData(opds=(opd,), subscriptions=(sub,))
    back = load_yaml(dump_yaml(data))
    assert back == data
    equals = back.subscriptions[0].filter.equals
    # True, 1 and 1.0 are equal in Python; the file must keep them apart.
    assert [type(equals[k]) for k in ("nik", "jenis_kelamin", "nama")] == [bool, float, int]


# YAML's own punctuation, whitespace and line breaks, to reach the emitter's corner cases.
_YAML_ISH = st.text(st.sampled_from(list(" \n\t\r:#-'\"&*!|>%@`,[]{}?~\\\x85\u2028\ufeffa0é")))


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(st.characters(exclude_categories=("Cs",)), max_size=120), _YAML_ISH))
def test_any_text_round_trips(text: str) -> None:
    opd = Opd(code="dinsos", name="Dinas Sosial", pemda_name="Kota Bandung", pemda_code="32.73",
              contact=text)  # fmt: skip
    data = DirectoryData(opds=(opd,))
    assert load_yaml(dump_yaml(data)) == data


# -- what load_yaml refuses --------------------------------------------------------------

GOOD_APP = """\
  - id: siak
    name: SIAK
    opd: dukcapil
    method: sdk
"""


def test_syntax_errors_name_the_line() -> None:
    problems = _problems("version: 1\nopds:\n  - code: dukcapil\n   name: [unclosed\n")
    (where, rule), *_ = problems.items()
    assert where.startswith("line 4")
    assert rule.startswith("YAML syntax error")
    problems = _problems("version: 1\n---\nversion: 1\n")
    assert "single document" in next(iter(problems.values()))
    problems = _problems("version: 1\nopds: !!python/object:os.system {}\n")
    assert next(iter(problems)).startswith("line 2")


def test_duplicate_keys_are_refused_with_both_lines() -> None:
    text = "version: 1\napplications:\n" + GOOD_APP + "    name: SIAK Terpusat\n"
    problems = _problems(text)
    assert problems["applications[0].name"] == (
        "is given twice (lines 4 and 7); a key may appear once"
    )
    problems = _problems("version: 1\nopds: []\nopds: []\n")
    assert "lines 2 and 3" in problems["opds"]


def test_unknown_sections_and_versions_are_refused() -> None:
    problems = _problems("version: 1\nopd: []\nsubscriptions: []\n")
    assert "is not a section" in problems["opd"]
    assert "opds" in problems["opd"]  # names what was expected
    problems = _problems("version: 2\nopds: []\n")
    assert "is not a format this Lintas reads" in problems["version"]
    assert "required" in _problems("opds: []\n")["version"]
    assert "format" in _problems('version: "1"\n')["version"]
    assert "format" in _problems("version: true\n")["version"]  # True == 1 in Python
    assert "is empty" in _problems("# nothing\n")["(file)"]
    assert "mapping" in _problems("- version: 1\n")["(file)"]


def test_every_bad_entry_is_named_by_its_path() -> None:
    text = f"""\
version: 1
opds:
  - code: dukcapil
    name: Disdukcapil
    pemda_name: Kota Bandung
    pemda_code: 32.73
applications:
{GOOD_APP}  - id: simpus
    name: SIMPUS
    opd: dinkes
    method: sdk
  - id: sipbansos
    name: SIP Bansos
    opd: dinsos
    method: gateway
    pse_number: PSE-2022-01
    status: integrated
    colour: red
subscribers:
  - name: dinsos
    opd: dinsos
    mode: webhook
  - just text
subscriptions: {{}}
"""
    problems = _problems(text)
    assert "quotes" in problems["opds[0].pemda_code"]
    assert "DJAI.PSE" in problems["applications[2].pse_number"]
    assert "computed" in problems["applications[2].status"]
    assert problems["applications[2].colour"].startswith("is not a field of applications")
    assert "required" in problems["subscribers[0].webhook_url"]
    assert "mapping" in problems["subscribers[1]"]
    assert "list" in problems["subscriptions"]
    assert not any(k.startswith(("applications[0]", "applications[1]")) for k in problems)


def test_an_entry_listed_twice_is_refused() -> None:
    text = "version: 1\napplications:\n" + GOOD_APP + GOOD_APP.replace("SIAK", "siak")
    problems = _problems(text)
    assert problems["applications[1].id"] == (
        "is already used by applications[0]; each application appears once"
    )
    text = "version: 1\napplications:\n" + GOOD_APP + GOOD_APP.replace("id: siak", "id: siak2")
    assert "same OPD" in _problems(text)["applications[1].name"]


# -- the plan ---------------------------------------------------------------------------


def test_same_data_plans_nothing() -> None:
    data = _sample()
    plan = diff_directory(data, data, catalog=CATALOG)
    assert not plan.has_changes
    assert {c.action for c in plan.changes} == {ChangeAction.UNCHANGED}
    assert plan.render().startswith("No changes")


def test_update_lists_exactly_the_changed_fields_old_and_new() -> None:
    current = _sample()
    target = _replace(
        current, "applications", "simpus", pse_number="000124.01/DJAI.PSE/08/2023",
        status="retired",
    )  # fmt: skip
    target = _replace(
        target, "subscriptions", "dinsos-kematian", fields=["nik", "tanggal_kematian"],
        filter={"kode_wilayah_prefix": "32.73"},
    )  # fmt: skip
    plan = diff_directory(current, target, catalog=CATALOG)
    assert _actions(plan) == {
        ("application", "simpus"): "update",
        ("subscription", "dinsos-kematian"): "update",
    }
    by_key = {c.key: c for c in plan.changes}
    assert by_key["simpus"].fields == (
        FieldChange("pse_number", "000123.01/DJAI.PSE/07/2022", "000124.01/DJAI.PSE/08/2023"),
        FieldChange("status", "testing", "retired"),
    )
    sub = by_key["dinsos-kematian"]
    assert [f.field for f in sub.fields] == ["filter", "fields"]
    assert sub.fields[0] == FieldChange("filter", {}, {"kode_wilayah_prefix": "32.73"})
    text = plan.render()
    assert "~ application simpus" in text
    assert '    status: "testing" → "retired"' in text
    assert "Plan: 0 to create, 2 to update, 0 to remove" in text
    assert "= " not in text and "= opd" in plan.render(show_unchanged=True)


def test_filter_values_of_other_types_are_a_change() -> None:
    base = _sample()
    current = _replace(base, "subscriptions", "dinsos-kematian", filter={"equals": {"nik": 1}})
    target = _replace(base, "subscriptions", "dinsos-kematian", filter={"equals": {"nik": True}})
    assert _actions(diff_directory(current, target, catalog=CATALOG)) == {
        ("subscription", "dinsos-kematian"): "update"
    }


def test_plan_is_json_able_and_ordered_by_dependency() -> None:
    plan = diff_directory(DirectoryData(), _sample(), catalog=CATALOG)
    doc = json.loads(json.dumps(plan.to_dict()))
    kinds = [c["kind"] for c in doc["changes"]]
    assert kinds == sorted(kinds, key=["opd", "application", "subscriber", "subscription"].index)
    first = doc["changes"][0]
    assert first["action"] == "create" and first["path"].startswith("opds[")
    assert {"field": "code", "old": None, "new": first["key"]} in first["fields"]
    assert doc["counts"]["create"] == len(doc["changes"]) and doc["has_changes"]


def test_without_prune_missing_entries_are_kept_and_reported() -> None:
    current = _sample()
    target = _without(current, "subscriptions", "dinsos-pindah-datang")
    target = _without(target, "applications", "ppdb")
    plan = diff_directory(current, target, catalog=CATALOG)
    assert _actions(plan) == {
        ("subscription", "dinsos-pindah-datang"): "not-in-file",
        ("application", "ppdb"): "not-in-file",
    }
    assert not plan.has_changes
    assert "--prune would retire it" in plan.render()


def test_prune_deletes_subscriptions_retires_apps_disables_subscribers_never_opds() -> None:
    current = _sample()
    target = _without(current, "subscriptions", "dasbor-pengaduan")
    target = _without(target, "subscribers", "dasbor-kinerja")
    target = _without(target, "applications", "aduan-warga")
    target = _without(target, "opds", "diskominfo")
    # What the file still holds may not refer to what it dropped: nothing here does.
    plan = diff_directory(current, target, catalog=CATALOG, prune=True)
    assert _actions(plan) == {
        ("subscription", "dasbor-pengaduan"): "delete",
        ("subscriber", "dasbor-kinerja"): "disable",
        ("application", "aduan-warga"): "retire",
        ("opd", "diskominfo"): "not-in-file",
    }
    removals = [c.kind for c in plan.changes if c.action.writes]
    assert removals == [EntryKind.SUBSCRIPTION, EntryKind.SUBSCRIBER, EntryKind.APPLICATION]
    retire = next(c for c in plan.changes if c.action is ChangeAction.RETIRE)
    assert retire.fields == (FieldChange("status", "testing", "retired"),)
    text = plan.render()
    assert "- application aduan-warga (retire; its API keys are revoked)" in text
    assert "? opd diskominfo: not in the file, kept (an import never removes OPDs)" in text
    # Already retired or disabled: nothing left to do.
    after = _replace(current, "applications", "aduan-warga", status="retired")
    after = _replace(after, "subscribers", "dasbor-kinerja", status="disabled")
    after = _without(after, "subscriptions", "dasbor-pengaduan")
    again = diff_directory(after, target, catalog=CATALOG, prune=True)
    assert not again.has_changes


def test_plan_refuses_what_the_directory_would_refuse() -> None:
    current = _sample()
    target = _replace(current, "applications", "simpus", opd="dinsos", name="SIP Bansos")
    target = _replace(target, "subscriptions", "dinsos-kematian", fields=["nik", "gaji"])
    target = _replace(target, "subscribers", "dasbor-kinerja", app_id="tidak-ada")
    target = _replace(target, "opds", "dinsos", name="Dinas Kesehatan")
    with pytest.raises(InvalidEntry) as exc:
        diff_directory(current, target, catalog=CATALOG)
    problems = {p.field: p.rule for p in exc.value.problems}
    i = [a.id for a in target.applications].index("simpus")
    assert "cannot be changed (it is 'dinkes'" in problems[f"applications[{i}].opd"]
    assert "may produce only dinsos.*" in problems[f"applications[{i}].produces"]
    j = [s.name for s in target.subscriptions].index("dinsos-kematian")
    rule = problems[f"subscriptions[{j}].fields"]
    assert "is not a field of dukcapil.kematian_dicatat.v1" in rule
    k = [s.name for s in target.subscribers].index("dasbor-kinerja")
    rule = problems[f"subscribers[{k}].app_id"]
    assert "not an application in the file or the directory" in rule
    assert problems["opds[2].name"] == "is already the name of opds[1]"  # dinkes's name
    # An OPD name another OPD keeps (one that is not in the file) is refused.
    extra = Opd(code="dishub", name="Dinas Perhubungan", pemda_name="Kota Bandung",
                pemda_code="32.73")  # fmt: skip
    with_dishub = current.model_copy(update={"opds": (*current.opds, extra)})
    target = _replace(current, "opds", "dinsos", name="DINAS PERHUBUNGAN")
    with pytest.raises(InvalidEntry) as exc:
        diff_directory(with_dishub, target, catalog=CATALOG)
    assert [str(p) for p in exc.value.problems] == [
        "opds[2].name: is already the name of OPD 'dishub' (got 'DINAS PERHUBUNGAN')"
    ]


def test_references_may_point_into_the_directory() -> None:
    """A partial file (one new subscription) is fine when what it names already exists."""
    current = _sample()
    sub = Subscription(
        name="dinsos-kelahiran",
        subscriber="dinsos-sipbansos",
        event_types=("dukcapil.kelahiran_dicatat.v1",),
        fields=("nik", "nomor_kk"),
        purpose="Adding newborns to their family's DTKS record (UU 27/2022 PDP).",
    )
    plan = diff_directory(current, DirectoryData(subscriptions=(sub,)), catalog=CATALOG)
    assert _actions(plan)[("subscription", "dinsos-kelahiran")] == "create"
    assert sum(c.action is ChangeAction.NOT_IN_FILE for c in plan.changes) == len(
        current.opds
    ) + len(current.applications) + len(current.subscribers) + len(current.subscriptions)
    with pytest.raises(InvalidEntry) as exc:
        diff_directory(DirectoryData(), DirectoryData(subscriptions=(sub,)), catalog=CATALOG)
    assert [p.field for p in exc.value.problems] == ["subscriptions[0].subscriber"]


def test_unchanged_entries_are_not_checked_again() -> None:
    """An entry the import does not touch cannot block it, even if rules moved on."""
    current = _sample()
    stale = current.applications[0].model_copy(update={"produces": ("dukcapil.tidak_ada.v1",)})
    current = current.model_copy(update={"applications": (stale, *current.applications[1:])})
    plan = diff_directory(current, current, catalog=CATALOG)
    assert not plan.has_changes

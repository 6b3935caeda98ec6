"""The audit page's names: every action, group and source named in both languages."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from lintas.audit import AuditAction
from lintas.portal import LANGUAGES, Translator
from lintas.portal._pages_audit import ACTION_GROUPS, action_labels, names


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_action_group_and_source_has_a_name(lang: str) -> None:
    t = Translator(lang, ZoneInfo("Asia/Jakarta"))
    labels = action_labels(t)
    assert set(labels) == {a.value for a in AuditAction}
    shown = {**labels, **names(t)}
    missing = [k for k, v in shown.items() if v.startswith("audit.")]
    assert not missing, f"{lang}: {missing}"
    assert set(names(t)) == {*ACTION_GROUPS, "platform", "pgaudit"}


def test_every_action_belongs_to_a_filter_group() -> None:
    prefixes = [p for group in ACTION_GROUPS.values() for p in group]
    for action in AuditAction:
        assert any(action.value.startswith(p) for p in prefixes), action


def test_the_indonesian_page_is_not_english() -> None:
    t_id, t_en = (Translator(lang, ZoneInfo("Asia/Jakarta")) for lang in ("id", "en"))
    assert t_id("audit.title") == "Log audit" and t_en("audit.title") == "Audit log"
    assert action_labels(t_id)["api_key.revoked"] != action_labels(t_en)["api_key.revoked"]

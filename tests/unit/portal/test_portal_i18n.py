"""The message catalogs: complete in both languages, and covering every key the pages use."""

from __future__ import annotations

import datetime as dt
import re
from importlib.resources import files
from zoneinfo import ZoneInfo

import pytest

from lintas.directory import AppStatus, DeliveryMode, IntegrationMethod, SubscriptionStatus
from lintas.portal import LANGUAGES, Translator, messages
from lintas.portal.data.sections import PanelState
from lintas.schemas import PII_KINDS
from lintas.streams.dlq import Reason

PORTAL = files("lintas.portal")
TEMPLATES = {p.name: p.read_text() for p in PORTAL.joinpath("templates").iterdir()}
SCRIPTS = {
    p.name: p.read_text() for p in PORTAL.joinpath("static").iterdir() if p.name.endswith(".js")
}
PYTHON = {p.name: p.read_text() for p in PORTAL.iterdir() if p.name.endswith(".py")}
JAKARTA = ZoneInfo("Asia/Jakarta")


def _used() -> set[str]:
    """Every literal key in templates, scripts and handlers; a trailing dot marks a prefix
    that a value completes (``t("status." ~ app.status)``)."""
    keys: set[str] = set()
    for text in TEMPLATES.values():
        keys |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_.]+)["']""", text))
    for text in SCRIPTS.values():
        keys |= set(re.findall(r'"(js\.[a-z0-9_.]+)"', text))
    for text in PYTHON.values():
        keys |= {
            k for k in re.findall(r'"((?:login|error)\.[a-z_]+)"', text) if not k.endswith(".html")
        }
    return keys


def _static_keys() -> set[str]:
    return {k for k in _used() if not k.endswith(".")}


def test_every_prefix_the_pages_complete_has_messages() -> None:
    prefixes = {k for k in _used() if k.endswith(".")}
    assert "status." in prefixes and "js.component." in prefixes
    dynamic = _dynamic_keys()
    for prefix in prefixes:
        assert any(k.startswith(prefix) for k in dynamic), f"no known values for {prefix}*"


def _dynamic_keys() -> set[str]:
    """Keys built from a prefix and a value: every value the code can produce."""
    keys = {f"status.{s.value}" for s in AppStatus}
    keys |= {f"method.{m.value}" for m in IntegrationMethod}
    keys |= {f"mode.{m.value}" for m in DeliveryMode}
    keys |= {f"substatus.{s.value}" for s in SubscriptionStatus}
    keys |= {f"js.substatus.{s}" for s in ("active", "paused", "disabled")}
    keys |= {f"role.{r}" for r in ("operator", "viewer")}
    keys |= {f"lang.{code}" for code in LANGUAGES}
    keys |= {f"pii.kind.{kind}" for kind in PII_KINDS}
    keys |= {f"keys.state.{s}" for s in ("active", "expired", "revoked")}
    keys |= {f"dlq.reason.{r.value}" for r in Reason}
    keys |= {f"keys.overlap.{o}" for o in ("7", "1", "0", "keep")}
    keys |= {f"js.component.{c}" for c in ("kafka", "postgresql", "registry")}
    keys |= {f"js.probe.{c}" for c in ("kafka", "registry")}
    keys |= {
        f"error.{k}.{code}" for k in ("title", "text") for code in (400, 401, 403, 404, 405, 500)
    }
    return keys


def test_both_languages_have_the_same_keys() -> None:
    ids, ens = set(messages("id")), set(messages("en"))
    assert ids == ens, f"only id: {sorted(ids - ens)}; only en: {sorted(ens - ids)}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_key_the_pages_use_is_translated(lang: str) -> None:
    used = _static_keys() | _dynamic_keys()
    assert len(used) > 150  # the extraction itself works
    missing = used - set(messages(lang))
    assert not missing, f"{lang}: {sorted(missing)}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_message_is_empty_and_placeholders_match(lang: str) -> None:
    other = messages("en" if lang == "id" else "id")
    for key, text in messages(lang).items():
        assert text.strip(), key
        assert set(re.findall(r"\{(\w+)\}", text)) == set(re.findall(r"\{(\w+)\}", other[key])), key


def test_the_two_languages_differ_where_words_are_shown() -> None:
    same = {k for k, v in messages("id").items() if messages("en")[k] == v}
    # Names, codes and acronyms are the same in both; sentences are not.
    assert "nav.dashboard" not in same and "login.failed" not in same
    assert len(same) < 25, sorted(same)


def test_numbers_and_dates_follow_the_language() -> None:
    t_id, t_en = Translator("id", JAKARTA), Translator("en", JAKARTA)
    assert t_id.number(1234567) == "1.234.567" and t_en.number(1234567) == "1,234,567"
    assert t_id.number(12.5) == "12,5" and t_en.number(12.5) == "12.5"
    moment = dt.datetime(2025, 8, 17, 3, 5, tzinfo=dt.UTC)  # 10.05 WIB
    assert t_id.datetime(moment) == "17 Agu 2025 10.05"
    assert t_en.datetime(moment) == "17 Aug 2025 10:05"
    assert t_id.datetime(None) == t_en.number(None) == "\u2013"


def test_translator_formats_placeholders_and_falls_back() -> None:
    t = Translator("id", JAKARTA)
    assert t("apps.summary", integrated="3", total="7", days=30).startswith("3 dari 7 aplikasi")
    assert t("no.such.key") == "no.such.key"
    assert Translator("fr", JAKARTA).lang == "id"
    with pytest.raises(ValueError, match="unknown language"):
        messages("fr")


def test_script_messages_are_the_js_ones() -> None:
    js = Translator("en", JAKARTA).for_script()
    assert js and all(k.startswith("js.") for k in js)
    assert js["js.no_data"] == "No data yet"
    assert {s.value for s in PanelState} == {"ok", "no_data", "error"}

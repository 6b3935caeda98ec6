"""The portal's message catalog: Bahasa Indonesia first, English as the switch.

Messages live in ``locales/<lang>.json``, one flat object of ``key -> text`` per language;
texts may hold ``{name}`` placeholders. Templates call ``t("key", name=...)``. A test checks
that both catalogs have the same keys and that every key a template or script uses exists,
so a page cannot show an untranslated string.

Numbers and dates are formatted per language here too: Indonesian writes ``1.234.567`` and
``23 Nov 2025 14.05``, English ``1,234,567`` and ``23 Nov 2025 14:05``.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from importlib.resources import files
from typing import Any, Final
from zoneinfo import ZoneInfo

import orjson

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "Translator", "messages"]

log = logging.getLogger(__name__)

LANGUAGES: Final = ("id", "en")
DEFAULT_LANGUAGE: Final = "id"

# Shown for a missing value: an en dash, as printed tables do.
MISSING = "\u2013"

_MONTHS = {
    "id": ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des"),
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
}


@functools.cache
def messages(lang: str) -> dict[str, str]:
    """The catalog of one language (loaded once).

    Raises:
        ValueError: not one of :data:`LANGUAGES`.
    """
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; known: {', '.join(LANGUAGES)}")
    raw = files("lintas.portal").joinpath("locales", f"{lang}.json").read_bytes()
    loaded: dict[str, str] = orjson.loads(raw)
    return loaded


class Translator:
    """Texts, numbers and dates in one language and time zone.

    Usage::

        t = Translator("id", ZoneInfo("Asia/Jakarta"))
        t("nav.dashboard")                  # "Dasbor"
        t("apps.count", count=t.number(3))  # "3 aplikasi"
    """

    def __init__(self, lang: str, zone: ZoneInfo) -> None:
        self.lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
        self.zone = zone
        self._messages = messages(self.lang)

    def __call__(self, key: str, **values: Any) -> str:
        text = self._messages.get(key)
        if text is None:
            # Shown as the key so the gap is visible; the catalog test keeps this from shipping.
            log.warning("missing %s message %r", self.lang, key)
            return key
        return text.format_map(values) if values else text

    def has(self, key: str) -> bool:
        """Whether the catalog has ``key`` (for optional texts, like a reason's description)."""
        return key in self._messages

    def number(self, value: int | float | None) -> str:
        if value is None:
            return MISSING
        text = f"{value:,.0f}" if isinstance(value, int) or value >= 100 else f"{value:,.1f}"
        if self.lang == "id":
            # Indonesian swaps the separators: 1.234,5
            text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
        return text

    def datetime(self, value: dt.datetime | None) -> str:
        if value is None:
            return MISSING
        local = value.astimezone(self.zone)
        month = _MONTHS[self.lang][local.month - 1]
        sep = "." if self.lang == "id" else ":"
        return f"{local.day} {month} {local.year} {local.hour:02d}{sep}{local.minute:02d}"

    def date(self, value: dt.date | None) -> str:
        if value is None:
            return MISSING
        return f"{value.day} {_MONTHS[self.lang][value.month - 1]} {value.year}"

    def for_script(self, prefix: str = "js.") -> dict[str, str]:
        """The messages the browser script needs (keys starting with ``prefix``)."""
        return {k: v for k, v in self._messages.items() if k.startswith(prefix)}

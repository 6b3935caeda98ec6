"""Value transforms of mapping files: turn a legacy column's value into an event field's.

A field's ``transform`` is one entry or a list, applied in order; an entry is a name
(``strip``) or a one-key mapping with its argument (``{map: {"01": PBB_P2}}``)::

    strip, upper, lower        text
    digits                     keep only the digits ("3273-01.1001" -> "3273011001")
    kode_wilayah               "3273011001" -> "32.73.01.1001" (2, 4, 6 or 10 digits)
    str, int, bool             convert
    decimal: 2                 Decimal, rounded to 2 places (argument optional)
    date: "%d/%m/%Y"           a date from a date, a datetime or text (format optional, ISO)
    datetime: {timezone: Asia/Makassar, format: "%d-%m-%Y %H:%M"}
                               an aware datetime; naive values are in the timezone given,
                               else the source's ``timezone``
    map: {"1": PBB_P2, _default: LAINNYA}
                               look the value up (as text); without ``_default`` an unknown
                               value fails the row (it goes to the dead-letter topic)
    null_if: ["", "0000-00-00", "-"]
                               these values (as text) become null
    default: 0                 null becomes this value
    format: "SSPD-{}"          text from a pattern, ``{}`` is the value
    uuid5: "simda/setoran/"    a stable UUID from the value (kept when already a UUID)

A transform that cannot convert a value raises :class:`TransformFailed`; the row then goes
to the dead-letter topic with the field and the reason, and the capture goes on.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .types import CAPTURE_NAMESPACE

__all__ = ["TRANSFORMS", "Transform", "TransformFailed", "build_transform", "localize"]

Transform = Callable[[Any], Any]
_TRUE = frozenset({"1", "y", "ya", "yes", "t", "true", "on", "aktif"})
_FALSE = frozenset({"0", "n", "tidak", "no", "f", "false", "off", "nonaktif", ""})
_NON_DIGITS = re.compile(r"\D+")
_WILAYAH_SPLITS = {2: (2,), 4: (2, 2), 6: (2, 2, 2), 10: (2, 2, 2, 4)}


class TransformFailed(ValueError):
    """A value could not be transformed; the row is dead-lettered with this reason."""


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def localize(value: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """A naive datetime read as local time in ``zone``; an aware one unchanged."""
    return value.replace(tzinfo=zone) if value.tzinfo is None else value


def _nullsafe(fn: Callable[[Any], Any]) -> Transform:
    def apply(value: Any) -> Any:
        return None if value is None else fn(value)

    return apply


def _strip(arg: Any, zone: ZoneInfo) -> Transform:
    return _nullsafe(lambda v: _text(v).strip())


def _upper(arg: Any, zone: ZoneInfo) -> Transform:
    return _nullsafe(lambda v: _text(v).upper())


def _lower(arg: Any, zone: ZoneInfo) -> Transform:
    return _nullsafe(lambda v: _text(v).lower())


def _digits(arg: Any, zone: ZoneInfo) -> Transform:
    return _nullsafe(lambda v: _NON_DIGITS.sub("", _text(v)))


def _kode_wilayah(arg: Any, zone: ZoneInfo) -> Transform:
    def apply(value: Any) -> str:
        text = _text(value).strip()
        digits = _NON_DIGITS.sub("", text)
        splits = _WILAYAH_SPLITS.get(len(digits))
        if splits is None:
            raise TransformFailed(f"{text!r} is not a region code of 2, 4, 6 or 10 digits")
        parts, at = [], 0
        for size in splits:
            parts.append(digits[at : at + size])
            at += size
        return ".".join(parts)

    return _nullsafe(apply)


def _str(arg: Any, zone: ZoneInfo) -> Transform:
    return _nullsafe(_text)


def _int(arg: Any, zone: ZoneInfo) -> Transform:
    def apply(value: Any) -> int:
        try:
            number = decimal.Decimal(_text(value).strip())
        except decimal.InvalidOperation as exc:
            raise TransformFailed(f"{value!r} is not a whole number") from exc
        if number != number.to_integral_value():
            raise TransformFailed(f"{value!r} is not a whole number")
        return int(number)

    return _nullsafe(apply)


def _bool(arg: Any, zone: ZoneInfo) -> Transform:
    def apply(value: Any) -> bool:
        text = _text(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise TransformFailed(f"{value!r} is not a yes/no value")

    return _nullsafe(apply)


def _decimal(arg: Any, zone: ZoneInfo) -> Transform:
    if arg is not None and (not isinstance(arg, int) or isinstance(arg, bool) or arg < 0):
        raise ValueError("decimal takes the number of decimal places (0 or more)")
    quantum = decimal.Decimal(1).scaleb(-arg) if arg is not None else None

    def apply(value: Any) -> decimal.Decimal:
        try:
            number = decimal.Decimal(_text(value).strip().replace(",", "."))
        except decimal.InvalidOperation as exc:
            raise TransformFailed(f"{value!r} is not a number") from exc
        return number.quantize(quantum, decimal.ROUND_HALF_UP) if quantum else number

    return _nullsafe(apply)


def _date(arg: Any, zone: ZoneInfo) -> Transform:
    if arg is not None and not isinstance(arg, str):
        raise ValueError("date takes a strptime format such as '%d/%m/%Y'")

    def apply(value: Any) -> dt.date:
        if isinstance(value, dt.datetime):
            return localize(value, zone).astimezone(zone).date()
        if isinstance(value, dt.date):
            return value
        text = _text(value).strip()
        try:
            if arg:
                return dt.datetime.strptime(text, arg).date()
            return dt.date.fromisoformat(text[:10])
        except ValueError as exc:
            raise TransformFailed(f"{text!r} is not a date ({arg or 'YYYY-MM-DD'})") from exc

    return _nullsafe(apply)


def _datetime(arg: Any, zone: ZoneInfo) -> Transform:
    options = arg if isinstance(arg, Mapping) else {}
    if arg is not None and not isinstance(arg, Mapping):
        raise ValueError("datetime takes {timezone: ..., format: ...}")
    unknown = set(options) - {"timezone", "format"}
    if unknown:
        raise ValueError(f"datetime has no option {sorted(unknown)[0]!r}")
    local = zone
    if "timezone" in options:
        try:
            local = ZoneInfo(str(options["timezone"]))
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {options['timezone']!r}") from exc
    fmt = options.get("format")

    def apply(value: Any) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return localize(value, local)
        if isinstance(value, dt.date):
            return dt.datetime.combine(value, dt.time(), local)
        text = _text(value).strip()
        try:
            parsed = dt.datetime.strptime(text, fmt) if fmt else dt.datetime.fromisoformat(text)
        except ValueError as exc:
            raise TransformFailed(f"{text!r} is not a date and time ({fmt or 'ISO'})") from exc
        return localize(parsed, local)

    return _nullsafe(apply)


def _map(arg: Any, zone: ZoneInfo) -> Transform:
    if not isinstance(arg, Mapping) or not arg:
        raise ValueError("map takes a mapping of source values to field values")
    table = {str(k): v for k, v in arg.items() if k != "_default"}
    has_default = "_default" in arg
    fallback = arg.get("_default")

    def apply(value: Any) -> Any:
        found = table.get(_text(value).strip(), table.get(_text(value), _MISSING))
        if found is not _MISSING:
            return found
        if has_default:
            return fallback
        raise TransformFailed(f"no mapping for value {_text(value)!r}")

    return _nullsafe(apply)


_MISSING = object()


def _null_if(arg: Any, zone: ZoneInfo) -> Transform:
    values = arg if isinstance(arg, list) else [arg]
    nulls = {str(v) for v in values}

    def apply(value: Any) -> Any:
        if value is None or _text(value).strip() in nulls:
            return None
        return value

    return apply


def _default(arg: Any, zone: ZoneInfo) -> Transform:
    return lambda value: arg if value is None else value


def _format(arg: Any, zone: ZoneInfo) -> Transform:
    if not isinstance(arg, str) or "{}" not in arg:
        raise ValueError("format takes a pattern with {} for the value, e.g. 'SSPD-{}'")
    return _nullsafe(lambda v: arg.replace("{}", _text(v)))


def _uuid5(arg: Any, zone: ZoneInfo) -> Transform:
    prefix = "" if arg is None else str(arg)

    def apply(value: Any) -> str:
        text = _text(value).strip()
        try:
            return str(uuid.UUID(text))
        except ValueError:
            return str(uuid.uuid5(CAPTURE_NAMESPACE, prefix + text))

    return _nullsafe(apply)


Factory = Callable[[Any, ZoneInfo], Transform]

TRANSFORMS: dict[str, Factory] = {
    "strip": _strip,
    "upper": _upper,
    "lower": _lower,
    "digits": _digits,
    "kode_wilayah": _kode_wilayah,
    "str": _str,
    "int": _int,
    "bool": _bool,
    "decimal": _decimal,
    "date": _date,
    "datetime": _datetime,
    "map": _map,
    "null_if": _null_if,
    "default": _default,
    "format": _format,
    "uuid5": _uuid5,
}
"""Every transform a mapping file may name."""

_NEEDS_ARG = frozenset({"map", "null_if", "default", "format"})


def build_transform(spec: Any, zone: ZoneInfo) -> Transform:
    """One transform from its spec: a name, or ``{name: argument}``.

    Raises:
        ValueError: an unknown name, or an argument the transform cannot use (the caller
            adds the file and line).
    """
    if isinstance(spec, str):
        name, arg = spec, None
    elif isinstance(spec, Mapping) and len(spec) == 1:
        ((name, arg),) = spec.items()
    else:
        raise ValueError("a transform is a name or {name: argument}")
    factory = TRANSFORMS.get(name)
    if factory is None:
        raise ValueError(f"unknown transform {name!r}; known: {', '.join(sorted(TRANSFORMS))}")
    if name in _NEEDS_ARG and isinstance(spec, str):
        raise ValueError(f"transform {name!r} needs an argument: {{{name}: ...}}")
    return factory(arg, zone)

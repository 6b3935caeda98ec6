"""The simulated OPD applications: who publishes what, how, how much and when.

Each entry matches an application of the demo directory (``directory.yaml`` beside this
module; a unit test keeps the two in step): its id and OPD, its integration method (the
Python SDK, or the HTTP gateway from a Node.js process), when it is busy, its share of the
traffic and its mix of event types.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from importlib import resources

from .traffic import Profile

__all__ = ["DEMO_APPS", "Channel", "SimApp", "demo_directory_text"]


class Channel(enum.StrEnum):
    """How a simulated application publishes (its ``method`` in the directory)."""

    SDK = "sdk"
    """``lintas.producers.EventProducer``, in the demo's own process."""
    GATEWAY = "gateway"
    """The HTTP gateway, from the demo's Node.js client (a non-Python process)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SimApp:
    """One simulated application.

    Attributes:
        app_id, opd: as registered in the directory.
        label: a short name for the progress display.
        channel: how it publishes.
        profile: when it is busy.
        share: its share of the traffic, relative to the other applications.
        mix: event type ids with their relative weights.
    """

    app_id: str
    opd: str
    label: str
    channel: Channel
    profile: Profile
    share: float
    mix: tuple[tuple[str, float], ...]

    @property
    def source(self) -> str:
        """Its CloudEvents source, ``/opd/<opd>/<app>``."""
        return f"/opd/{self.opd}/{self.app_id}"

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(t for t, _ in self.mix)


DEMO_APPS: tuple[SimApp, ...] = (
    SimApp(
        app_id="siak-bandung",
        opd="dukcapil",
        label="SIAK",
        channel=Channel.SDK,
        profile=Profile.OFFICE,
        share=3.0,
        mix=(
            ("dukcapil.kk_diperbarui.v1", 4.0),
            ("dukcapil.kelahiran_dicatat.v1", 3.0),
            ("dukcapil.pindah_datang.v1", 2.0),
            ("dukcapil.kematian_dicatat.v1", 1.0),
        ),
    ),
    SimApp(
        app_id="adminduk-online",
        opd="dukcapil",
        label="Adminduk Online",
        channel=Channel.GATEWAY,
        profile=Profile.ONLINE,
        share=1.5,
        mix=(("dukcapil.kk_diperbarui.v1", 2.0), ("dukcapil.pindah_datang.v1", 1.0)),
    ),
    SimApp(
        app_id="sicantik",
        opd="dpmptsp",
        label="SiCantik",
        channel=Channel.GATEWAY,
        profile=Profile.OFFICE,
        share=1.5,
        mix=(("dpmptsp.izin_terbit.v1", 5.0), ("dpmptsp.izin_dicabut.v1", 1.0)),
    ),
    SimApp(
        app_id="simpus",
        opd="dinkes",
        label="SIMPUS",
        channel=Channel.GATEWAY,
        profile=Profile.OFFICE,
        share=3.0,
        mix=(("dinkes.kunjungan_pasien.v1", 1.0),),
    ),
    SimApp(
        app_id="simrs-rsud",
        opd="dinkes",
        label="SIMRS RSUD",
        channel=Channel.SDK,
        profile=Profile.ONLINE,
        share=2.0,
        mix=(("dinkes.kunjungan_pasien.v1", 1.0),),
    ),
    SimApp(
        app_id="sipbansos",
        opd="dinsos",
        label="SIP Bansos",
        channel=Channel.GATEWAY,
        profile=Profile.OFFICE,
        share=1.5,
        mix=(("dinsos.bansos_disalurkan.v1", 1.0),),
    ),
    SimApp(
        app_id="e-pad",
        opd="bapenda",
        label="e-PAD",
        channel=Channel.SDK,
        profile=Profile.ONLINE,
        share=2.0,
        mix=(("bapenda.pajak_dibayar.v1", 1.0),),
    ),
    SimApp(
        app_id="sipbb",
        opd="bapenda",
        label="SIM PBB-P2",
        channel=Channel.SDK,
        profile=Profile.ONLINE,
        share=1.5,
        mix=(("bapenda.pajak_dibayar.v1", 1.0),),
    ),
    SimApp(
        app_id="ppdb",
        opd="disdik",
        label="PPDB",
        channel=Channel.SDK,
        profile=Profile.ONLINE,
        share=1.0,
        mix=(("disdik.siswa_terdaftar.v1", 1.0),),
    ),
    SimApp(
        app_id="aduan-warga",
        opd="diskominfo",
        label="Aduan Warga",
        channel=Channel.GATEWAY,
        profile=Profile.ONLINE,
        share=1.5,
        mix=(("diskominfo.pengaduan_diterima.v1", 3.0), ("diskominfo.pengaduan_selesai.v1", 2.0)),
    ),
    SimApp(
        app_id="lapor-connector",
        opd="diskominfo",
        label="SP4N-LAPOR",
        channel=Channel.SDK,
        profile=Profile.ONLINE,
        share=0.5,
        mix=(("diskominfo.pengaduan_diterima.v1", 1.0),),
    ),
)


def demo_directory_text() -> str:
    """The demo directory file (YAML, format version 1) shipped with the package."""
    return resources.files(__package__).joinpath("directory.yaml").read_text(encoding="utf-8")

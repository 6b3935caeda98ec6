"""What the portal's integration tests share: users, the portal under test, seed data."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from lintas.directory import Directory
from lintas.endpoints import Endpoints
from lintas.portal.testing import PortalProcess, sign_in
from lintas.settings import Settings

OPERATOR = ("siti", "kata-sandi-operator-1")
VIEWER = ("budi", "kata-sandi-pemantau-1")


@dataclass(kw_only=True)
class Portal:
    url: str
    dsn: str
    data_dir: Path
    process: PortalProcess
    env: dict[str, str]

    def settings(self) -> Settings:
        return Settings(data_dir=self.data_dir, pg_dsn=self.dsn)


def portal_env(endpoints: Endpoints, dsn: str, data_dir: Path, registry_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINTAS_")}
    env.update(
        {
            "LINTAS_PG_DSN": dsn,
            "LINTAS_KAFKA_BOOTSTRAP": endpoints.kafka.bootstrap,
            "LINTAS_KAFKA__USERNAME": endpoints.kafka.username,
            "LINTAS_KAFKA__PASSWORD": endpoints.kafka.password,
            "LINTAS_KAFKA__SASL_MECHANISM": endpoints.kafka.sasl_mechanism,
            "LINTAS_REGISTRY_URL": registry_url,
            "LINTAS_DATA_DIR": str(data_dir),
            "LINTAS_PORTAL__REFRESH_S": "1",
        }
    )
    return env


def add_user(env: dict[str, str], tmp: Path, name: str, role: str, password: str) -> None:
    """``lintas portal user add`` as an operator runs it."""
    secret = tmp / f"{name}.password"
    secret.write_text(password + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "lintas.cli", "portal", "user", "add", name, "--role", role,
         "--password-file", str(secret)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


async def seed(d: Directory) -> None:
    """Three OPDs, four applications, a webhook subscriber with one subscription."""
    await d.add_opd({"code": "dukcapil", "name": "Dinas Kependudukan dan Pencatatan Sipil"})
    await d.add_opd({"code": "dinsos", "name": "Dinas Sosial"})
    await d.add_opd({"code": "bapenda", "name": "Badan Pendapatan Daerah"})
    await d.add_application(
        {"id": "siak", "name": "SIAK", "opd": "dukcapil", "method": "sdk",
         "produces": ["dukcapil.kematian_dicatat.v1", "dukcapil.kelahiran_dicatat.v1"]}
    )  # fmt: skip
    await d.add_application(
        {"id": "siks-ng", "name": "SIKS-NG", "opd": "dinsos", "method": "gateway"}
    )
    await d.add_application(
        {"id": "sipd-pajak", "name": "e-Pajak", "opd": "bapenda", "method": "gateway",
         "produces": ["bapenda.pajak_dibayar.v1"]}
    )  # fmt: skip
    await d.add_application(
        {"id": "simpeg", "name": "SIMPEG", "opd": "bapenda", "method": "capture"}
    )
    await d.add_subscriber(
        {"name": "dinsos-bansos", "opd": "dinsos", "app_id": "siks-ng", "mode": "webhook",
         "webhook_url": "https://dinsos.example.go.id/hook"}
    )  # fmt: skip
    await d.add_subscription(
        {"name": "kematian-ke-dinsos", "subscriber": "dinsos-bansos",
         "event_types": ["dukcapil.kematian_dicatat.v1"],
         "fields": ["nik", "tanggal_kematian", "kode_wilayah"],
         "purpose": "Menghentikan bansos bagi penerima yang telah meninggal (Permensos 3/2021)."}
    )  # fmt: skip


async def lintas_cli(env: dict[str, str], *args: str) -> str:
    """Run a ``lintas`` command as a child process; its stdout. Fails the test on exit != 0."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lintas.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


def client(portal: Portal) -> httpx.Client:
    return httpx.Client(base_url=portal.url, timeout=30)


def signed_in(portal: Portal, who: tuple[str, str]) -> httpx.Client:
    c = client(portal)
    answer = sign_in(c, *who)
    assert answer.status_code == 303, answer.text
    return c

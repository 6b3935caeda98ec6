"""A built wheel carries every package and its data, and imports without the source tree."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [
    "lintas",
    "lintas.cli",
    "lintas.producers",
    "lintas.streams",
    "lintas.consumers",
    "lintas.schemas",
    "lintas.deploy",
    "lintas.deploy.local",
    "lintas.migrations",
    "lintas.testing",
]
DATA = [
    ("lintas.deploy.local", "pom.xml"),
    ("lintas.deploy.local", "log4j2.properties"),
    ("lintas.deploy", "compose/docker-compose.yml"),
    ("lintas.migrations", "0001_core.sql"),
]


def test_wheel_installs_and_imports_in_a_fresh_venv(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        check=True,
        timeout=600,
    )
    wheel = next(dist.glob("lintas-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    target = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    # Install the wheel's files only; the dependencies come from our venv, appended after
    # the fresh site-packages so the wheel's copy of lintas is the one that imports.
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", target, str(wheel)],
        check=True,
        timeout=600,
    )
    deps = sysconfig.get_paths()["purelib"]
    script = f"""
import importlib, sys
from importlib import resources
sys.path.append({deps!r})
for name in {PACKAGES!r}:
    mod = importlib.import_module(name)
    assert mod.__file__.startswith({target!r}), (name, mod.__file__)
for pkg, path in {DATA!r}:
    assert resources.files(pkg).joinpath(path).is_file(), (pkg, path)
print("ok")
"""
    result = subprocess.run(
        [str(py), "-c", script], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"

"""Every command has --help; expected failures print one paragraph, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from lintas.cli import app

runner = CliRunner()


def _all_commands() -> list[list[str]]:
    root = typer.main.get_command(app)
    paths: list[list[str]] = [[]]

    def walk(cmd: object, prefix: list[str]) -> None:
        # Typer vendors its own click, so look for sub-commands rather than a class.
        for name, sub in getattr(cmd, "commands", {}).items():
            paths.append([*prefix, name])
            walk(sub, [*prefix, name])

    walk(root, [])
    return paths


@pytest.mark.parametrize("path", _all_commands(), ids=lambda p: " ".join(p) or "lintas")
def test_every_command_has_help(path: list[str]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    if path:
        assert len(result.output.split("Usage", 1)[1].strip()) > 40, "help text is missing"


def test_stack_commands_are_registered() -> None:
    names = {" ".join(p) for p in _all_commands()}
    assert {"up", "down", "status", "logs", "migrate", "fetch", "demo"} <= names


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LINTAS_")}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-m", "lintas.cli", *args],
        capture_output=True,
        text=True,
        env=clean,
        timeout=60,
        check=False,
    )


def test_bad_setting_is_one_paragraph_not_a_traceback() -> None:
    result = _run(["status"], {"LINTAS_KAFKA__PARTITIONS": "zero"})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "LINTAS_KAFKA__PARTITIONS" in result.stderr
    assert "valid integer" in result.stderr


def test_status_without_a_stack_says_how_to_start_one(tmp_path: Path) -> None:
    result = _run(["--data-dir", str(tmp_path / "none"), "status"], {})
    assert result.returncode == 1
    assert "lintas up" in result.stdout


def test_logs_of_unknown_component(tmp_path: Path) -> None:
    result = _run(["--data-dir", str(tmp_path / "none"), "logs", "kafka"], {})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "No component named 'kafka'" in result.stderr


def test_migrate_without_a_database_is_explained(tmp_path: Path) -> None:
    result = _run(["--data-dir", str(tmp_path / "none"), "migrate"], {})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "LINTAS_KAFKA_BOOTSTRAP" in result.stderr

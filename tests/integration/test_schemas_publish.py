"""The catalog against the real registry: check before register, refuse incompatible changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from lintas.endpoints import Endpoints
from lintas.schemas import Catalog, load_catalog
from lintas.schemas.publish import CheckOutcome, check_catalog, register_catalog
from lintas.schemas.registry import SchemaRegistryClient


def _catalog_with(tmp_path: Path, opd: str, mutate: object = None) -> Catalog:
    """A one-event catalog: Dukcapil's kematian_dicatat under a fresh OPD code."""
    source = load_catalog().get("dukcapil.kematian_dicatat.v1").schema
    schema = json.loads(json.dumps(source))
    schema["namespace"] = f"id.lintas.{opd}"
    if callable(mutate):
        mutate(schema)
    folder = tmp_path / opd
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kematian_dicatat.v1.avsc").write_text(json.dumps(schema))
    return Catalog.from_directory(tmp_path)


async def test_check_then_register_refuses_incompatible_changes(
    registry_url: str, tmp_path: Path
) -> None:
    opd = f"uji{uuid.uuid4().hex[:8]}"
    async with SchemaRegistryClient(registry_url) as client:
        first = await register_catalog(client, _catalog_with(tmp_path / "v1", opd))
        assert [c.outcome for c in first] == [CheckOutcome.NEW]
        assert first[0].schema_id is not None

        again = await register_catalog(client, _catalog_with(tmp_path / "v1", opd))
        assert [c.outcome for c in again] == [CheckOutcome.UNCHANGED]
        assert again[0].schema_id == first[0].schema_id

        def required_field(schema: dict) -> None:
            schema["fields"].append({"name": "nomor_telepon", "type": "string", "doc": "Phone."})

        broken = _catalog_with(tmp_path / "v2", opd, required_field)
        checks = await check_catalog(client, broken)
        assert checks[0].outcome is CheckOutcome.INCOMPATIBLE
        assert any("/fields/nomor_telepon" in r and "DEFAULT" in r for r in checks[0].reasons)
        refused = await register_catalog(client, broken)
        assert refused[0].schema_id is None
        subject = f"opd.{opd}.kematian_dicatat.v1-value"
        assert await client.get_versions(subject) == [1], "an incompatible schema was registered"

        def optional_field(schema: dict) -> None:
            schema["fields"].append(
                {
                    "name": "nomor_telepon",
                    "type": ["null", "string"],
                    "default": None,
                    "doc": "Phone.",
                }
            )

        evolved = await register_catalog(
            client, _catalog_with(tmp_path / "v3", opd, optional_field)
        )
        assert evolved[0].outcome is CheckOutcome.COMPATIBLE
        assert evolved[0].schema_id not in (None, first[0].schema_id)
        assert await client.get_versions(subject) == [1, 2]


def _cli(endpoints: Endpoints, registry_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINTAS_")}
    env.update(
        LINTAS_REGISTRY_URL=registry_url,
        LINTAS_KAFKA_BOOTSTRAP=endpoints.kafka.bootstrap,
        LINTAS_KAFKA__USERNAME=endpoints.kafka.username,
        LINTAS_KAFKA__PASSWORD=endpoints.kafka.password,
        LINTAS_KAFKA__SASL_MECHANISM=endpoints.kafka.sasl_mechanism,
        LINTAS_PG_DSN=endpoints.pg_dsn,
    )
    return subprocess.run(
        [sys.executable, "-m", "lintas.cli", *args],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip


def test_cli_register_check_show_export(
    endpoints: Endpoints, registry_url: str, tmp_path: Path
) -> None:
    registered = _cli(endpoints, registry_url, "schemas", "register")
    assert registered.returncode == 0, registered.stderr
    check = _cli(endpoints, registry_url, "schemas", "check")
    assert check.returncode == 0, check.stderr
    assert f"{len(load_catalog())} event types checked: all compatible" in check.stdout

    show = _cli(endpoints, registry_url, "schemas", "show", "dukcapil.kematian_dicatat.v1")
    assert show.returncode == 0, show.stderr
    assert "opd.dukcapil.kematian_dicatat.v1-value" in show.stdout
    assert '"name": "KematianDicatat"' in show.stdout

    missing = _cli(endpoints, registry_url, "schemas", "show", "opd.tidak.ada.v1-value")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr

    out = tmp_path / "registry.json"
    export = _cli(endpoints, registry_url, "schemas", "export", str(out))
    assert export.returncode == 0, export.stderr
    doc = json.loads(out.read_text())
    subjects = {s["subject"] for s in doc["subjects"]}
    assert {et.subject for et in load_catalog()} <= subjects

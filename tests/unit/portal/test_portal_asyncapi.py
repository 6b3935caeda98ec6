"""``lintas catalog export``: an AsyncAPI 3.0 document valid against the official JSON Schema."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from lintas.portal import AVRO_FORMAT, asyncapi_document
from lintas.schemas import example_event, load_catalog

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "asyncapi" / "3.0.0.json"
# tests/fixtures/asyncapi/README.md says where it comes from.
SHA256 = "d4571a420e6ffb7fcc7066c95a6db1202f299a3c51daa103d0706bf30f95e626"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    raw = FIXTURE.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == SHA256, "the vendored AsyncAPI schema changed"
    schema = json.loads(raw)
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _as_json(doc: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(doc))


def _errors(validator: jsonschema.Draft7Validator, doc: dict[str, Any]) -> list[str]:
    return [f"{e.json_path}: {e.message[:200]}" for e in validator.iter_errors(doc)]


def test_export_is_a_valid_asyncapi_3_document(validator: jsonschema.Draft7Validator) -> None:
    doc = _as_json(asyncapi_document(load_catalog(), kafka_bootstrap="kafka-1:9092"))
    assert _errors(validator, doc) == []
    assert doc["asyncapi"] == "3.0.0"
    assert doc["servers"]["lintas"]["host"] == "kafka-1:9092"


def test_every_event_type_is_a_channel_with_its_avro_message() -> None:
    catalog = load_catalog()
    doc = _as_json(asyncapi_document(catalog))
    assert len(doc["channels"]) == len(catalog) == len(doc["components"]["messages"])
    for et in catalog:
        channel = doc["channels"][et.id]
        assert channel["address"] == et.topic
        message = doc["components"]["messages"][et.id]
        assert message["payload"] == {"schemaFormat": AVRO_FORMAT, "schema": et.schema}
        assert message["bindings"]["kafka"]["schemaIdPayloadEncoding"] == "confluent"
        assert message["x-lintas-pii"] == dict(et.pii_fields)
        assert message["examples"][0]["payload"].keys() == example_event(et).keys()
        op = doc["operations"][f"publish.{et.id}"]
        assert op["action"] == "send" and op["channel"] == {"$ref": f"#/channels/{et.id}"}


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d.pop("info"),
        lambda d: d.update(asyncapi="2.6.0"),
        lambda d: d["channels"]["dukcapil.kematian_dicatat.v1"].update(address=42),
        lambda d: d["operations"]["publish.dukcapil.kematian_dicatat.v1"].update(action="publish"),
        lambda d: d["components"]["messages"]["dukcapil.kematian_dicatat.v1"]["bindings"][
            "kafka"
        ].update(schemaIdLocation="somewhere"),
    ],
    ids=["no-info", "wrong-version", "bad-address", "v2-action", "bad-kafka-binding"],
)
def test_the_validator_catches_a_broken_document(
    validator: jsonschema.Draft7Validator, breakage: Any
) -> None:
    doc = _as_json(asyncapi_document(load_catalog()))
    breakage(doc)
    assert _errors(validator, doc)


def test_cli_writes_the_document(tmp_path: Path, validator: jsonschema.Draft7Validator) -> None:
    out = tmp_path / "asyncapi.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINTAS_")}
    done = subprocess.run(
        [sys.executable, "-m", "lintas.cli", "catalog", "export", "--output", str(out)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"{len(load_catalog())} channels" in done.stderr
    assert _errors(validator, json.loads(out.read_text())) == []
    to_stdout = subprocess.run(
        [sys.executable, "-m", "lintas.cli", "catalog", "export"],
        env=env, capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    assert json.loads(to_stdout.stdout) == json.loads(out.read_text())

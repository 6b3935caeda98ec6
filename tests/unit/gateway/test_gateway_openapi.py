"""The OpenAPI document: one operation per event type, examples that pass, no dangling refs."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from lintas.producers.gateway import build_openapi
from lintas.schemas import load_catalog, model_for
from lintas.settings import GatewaySettings

CATALOG = load_catalog()
DOC = build_openapi(CATALOG, GatewaySettings())


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_ref_resolves() -> None:
    schemas = DOC["components"]["schemas"]
    refs = set(_refs(DOC))
    assert refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/")
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


@pytest.mark.parametrize("event_type", [t.id for t in CATALOG])
def test_each_event_type_has_an_operation_with_a_valid_example(event_type: str) -> None:
    operation = DOC["paths"][f"/v1/events/{event_type}"]["post"]
    content = operation["requestBody"]["content"]
    example = content["application/json"]["example"]
    model_for(event_type).model_validate(example)  # the example passes the contract
    # ... and the schema published for clients accepts it too (refs resolve in the document).
    schema = {"$ref": f"#/components/schemas/{event_type}", "components": DOC["components"]}
    jsonschema.Draft202012Validator(schema).validate(example)
    assert content["application/cloudevents+json"]["example"]["type"] == event_type
    assert {"202", "401", "403", "413", "422", "429", "503"} <= set(operation["responses"])


def test_pii_tags_are_extensions() -> None:
    kematian = DOC["components"]["schemas"]["dukcapil.kematian_dicatat.v1"]
    assert kematian["properties"]["nik"]["x-pii"] == "nik"
    assert "pii" not in kematian["properties"]["nik"]


def test_batch_limits_follow_the_settings() -> None:
    doc = build_openapi(CATALOG, GatewaySettings(max_batch_events=50, rate_limit_burst=50))
    content = doc["paths"]["/v1/events:batch"]["post"]["requestBody"]["content"]
    assert content["application/json"]["schema"]["maxItems"] == 50
    assert set(content) == {
        "application/json",
        "application/x-ndjson",
        "application/cloudevents-batch+json",
    }


def test_a_burst_smaller_than_a_batch_is_refused() -> None:
    with pytest.raises(ValidationError, match="rate_limit_burst"):
        GatewaySettings(max_batch_events=1000, rate_limit_burst=999)


def test_the_documented_curl_event_is_valid() -> None:
    import re
    from pathlib import Path

    import orjson

    docs = (Path(__file__).resolve().parents[3] / "docs" / "gateway.md").read_text()
    bodies = re.findall(r"-d '(\{.*?\})'", docs, flags=re.S)
    single = orjson.loads(bodies[0])
    model_for("dukcapil.kematian_dicatat.v1").model_validate(single)
    cloudevent = orjson.loads(bodies[1].replace('"...": "..."', '"x": 1'))
    assert cloudevent["source"] == "/opd/dukcapil/siak"

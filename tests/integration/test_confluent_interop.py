"""confluent-kafka's own registry client and Avro serde against the Lintas registry.

confluent-kafka's ``SchemaRegistryClient`` blocks, and the registry runs in this test's
event loop, so every confluent call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import orjson
import pytest
import pytest_asyncio
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry import SchemaRegistryClient as ConfluentClient
from confluent_kafka.schema_registry.avro import AvroDeserializer as ConfluentDeserializer
from confluent_kafka.schema_registry.avro import AvroSerializer as ConfluentSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError as ConfluentError
from confluent_kafka.serialization import MessageField, SerializationContext

from lintas.schemas import AvroDeserializer, AvroSerializer, example_event, load_catalog
from lintas.schemas.registry import RegistryServer, SchemaRegistryClient

T = TypeVar("T")

KEMATIAN = load_catalog().get("dukcapil.kematian_dicatat.v1")


async def off_loop(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(fn, *args, **kwargs)


@pytest_asyncio.fixture(loop_scope="session")
async def server(fresh_db: str) -> AsyncIterator[RegistryServer]:
    async with RegistryServer(fresh_db, port=0) as running:
        yield running


@pytest.fixture
def confluent(server: RegistryServer) -> ConfluentClient:
    return ConfluentClient({"url": server.url})


async def test_confluent_client_registers_looks_up_and_checks(confluent: ConfluentClient) -> None:
    subject = KEMATIAN.subject
    schema = Schema(KEMATIAN.schema_str, "AVRO")
    schema_id = await off_loop(confluent.register_schema, subject, schema)
    assert schema_id >= 1

    latest = await off_loop(confluent.get_latest_version, subject)
    assert latest.schema_id == schema_id
    assert latest.version == 1
    assert orjson.loads(latest.schema.schema_str) == KEMATIAN.schema

    found = await off_loop(confluent.lookup_schema, subject, schema)
    assert found.schema_id == schema_id and found.version == 1
    fetched = await off_loop(confluent.get_schema, schema_id)
    assert fetched.schema_str == KEMATIAN.schema_str
    assert await off_loop(confluent.get_subjects) == [subject]
    assert await off_loop(confluent.get_versions, subject) == [1]

    # Compatibility: an optional new field is fine, a required one is not (BACKWARD).
    doc = dict(KEMATIAN.schema)
    optional = {
        **doc,
        "fields": [
            *doc["fields"],
            {"name": "catatan", "type": ["null", "string"], "default": None, "doc": "Catatan."},
        ],
    }
    required = {
        **doc,
        "fields": [*doc["fields"], {"name": "catatan", "type": "string", "doc": "Catatan."}],
    }
    ok = Schema(orjson.dumps(optional).decode(), "AVRO")
    bad = Schema(orjson.dumps(required).decode(), "AVRO")
    assert await off_loop(confluent.test_compatibility, subject, ok) is True
    assert await off_loop(confluent.test_compatibility, subject, bad) is False
    with pytest.raises(ConfluentError) as refused:
        await off_loop(confluent.register_schema, subject, bad)
    assert refused.value.http_status_code == 409
    assert "/fields/catatan" in refused.value.error_message

    await off_loop(confluent.set_compatibility, subject, "FULL")
    assert await off_loop(confluent.get_compatibility, subject) == "FULL"
    await off_loop(confluent.set_compatibility, None, "FORWARD")
    assert await off_loop(confluent.get_compatibility) == "FORWARD"

    with pytest.raises(ConfluentError) as missing:
        await off_loop(confluent.get_latest_version, "no-such-subject")
    assert missing.value.error_code == 40401


async def test_wire_format_is_the_same_both_ways(
    server: RegistryServer, confluent: ConfluentClient
) -> None:
    record = example_event(KEMATIAN)
    ctx = SerializationContext(KEMATIAN.topic, MessageField.VALUE)
    confluent_serializer = ConfluentSerializer(confluent, KEMATIAN.schema_str)
    confluent_bytes = await off_loop(confluent_serializer, record, ctx)

    async with SchemaRegistryClient(server.url) as registry:
        lintas_bytes = await AvroSerializer(registry, auto_register=True).serialize(
            KEMATIAN, record
        )
        assert lintas_bytes == confluent_bytes
        # Confluent's bytes through Lintas's deserializer...
        decoded = await AvroDeserializer(registry).deserialize(confluent_bytes)
    assert decoded == record
    # ...and Lintas's bytes through Confluent's.
    confluent_deserializer = ConfluentDeserializer(confluent)
    assert await off_loop(confluent_deserializer, lintas_bytes, ctx) == record

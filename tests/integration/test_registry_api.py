"""The schema registry's REST API against a real PostgreSQL database, served by uvicorn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio

from lintas.migrate import migrate
from lintas.postgres import connect
from lintas.schemas import AvroDeserializer, AvroSerializer, example_event, load_catalog
from lintas.schemas.registry import (
    IncompatibleSchema,
    InvalidSchema,
    OperationNotPermitted,
    RegistryServer,
    SchemaNotFound,
    SchemaRegistryClient,
    SubjectNotFound,
    export_registry,
    import_registry,
)

V1 = "application/vnd.schemaregistry.v1+json"
SUBJECT = "opd.test.warga.v1-value"


def record(*fields: dict[str, Any], name: str = "Warga") -> str:
    return orjson.dumps(
        {"type": "record", "name": name, "namespace": "id.lintas.test", "fields": list(fields)}
    ).decode()


NIK = {"name": "nik", "type": "string"}
NAMA = {"name": "nama", "type": "string"}
NAMA_DEFAULT = {"name": "nama", "type": "string", "default": ""}
V1_SCHEMA = record(NIK)


@pytest_asyncio.fixture(loop_scope="session")
async def server(fresh_db: str) -> AsyncIterator[RegistryServer]:
    async with RegistryServer(fresh_db, port=0) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def http(server: RegistryServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, headers={"Content-Type": V1}) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def client(server: RegistryServer) -> AsyncIterator[SchemaRegistryClient]:
    async with SchemaRegistryClient(server.url) as registry:
        yield registry


async def post(http: httpx.AsyncClient, path: str, doc: Any) -> httpx.Response:
    return await http.post(path, content=orjson.dumps(doc))


async def put(http: httpx.AsyncClient, path: str, doc: Any) -> httpx.Response:
    return await http.put(path, content=orjson.dumps(doc))


def assert_error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    assert response.headers["content-type"].startswith(V1)
    return dict(body)


async def test_register_get_and_list(http: httpx.AsyncClient) -> None:
    r = await post(http, f"/subjects/{SUBJECT}/versions", {"schema": V1_SCHEMA})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(V1)
    schema_id = r.json()["id"]
    assert r.json()["version"] == 1

    # Same schema, other whitespace and key order: same id, no new version.
    shuffled = orjson.dumps(
        {
            "fields": [{"type": "string", "name": "nik"}],
            "namespace": "id.lintas.test",
            "name": "Warga",
            "type": "record",
        },
        option=orjson.OPT_INDENT_2,
    ).decode()
    again = await post(http, f"/subjects/{SUBJECT}/versions", {"schema": shuffled})
    assert again.json()["id"] == schema_id
    assert (await http.get(f"/subjects/{SUBJECT}/versions")).json() == [1]

    # The same schema under another subject shares the global id.
    other = await post(http, "/subjects/other-value/versions", {"schema": V1_SCHEMA})
    assert other.json()["id"] == schema_id

    assert (await http.get("/subjects")).json() == [SUBJECT, "other-value"]
    latest = (await http.get(f"/subjects/{SUBJECT}/versions/latest")).json()
    assert latest == {"subject": SUBJECT, "version": 1, "id": schema_id, "schema": V1_SCHEMA}
    assert (await http.get(f"/subjects/{SUBJECT}/versions/1")).json() == latest
    assert (await http.get(f"/subjects/{SUBJECT}/versions/-1")).json() == latest
    raw = await http.get(f"/subjects/{SUBJECT}/versions/1/schema")
    assert raw.text == V1_SCHEMA

    by_id = await http.get(f"/schemas/ids/{schema_id}")
    assert by_id.json() == {"schema": V1_SCHEMA}
    assert (await http.get(f"/schemas/ids/{schema_id}/schema")).text == V1_SCHEMA
    assert (await http.get(f"/schemas/ids/{schema_id}/subjects")).json() == [
        SUBJECT,
        "other-value",
    ]
    assert (await http.get(f"/schemas/ids/{schema_id}/versions")).json() == [
        {"subject": SUBJECT, "version": 1},
        {"subject": "other-value", "version": 1},
    ]
    assert (await http.get("/schemas/types")).json() == ["AVRO"]

    # Lookup by schema (whitespace-insensitive).
    found = await post(http, f"/subjects/{SUBJECT}", {"schema": shuffled})
    assert found.json() == latest

    # Plain application/json is honoured too.
    plain = await http.get("/subjects", headers={"Accept": "application/json"})
    assert plain.headers["content-type"].startswith("application/json")


async def test_error_codes(http: httpx.AsyncClient) -> None:
    await post(http, f"/subjects/{SUBJECT}/versions", {"schema": V1_SCHEMA})
    assert_error(await http.get("/subjects/nope/versions"), 404, 40401)
    assert_error(await http.get("/subjects/nope/versions/1"), 404, 40401)
    assert_error(await http.get(f"/subjects/{SUBJECT}/versions/7"), 404, 40402)
    assert_error(await http.get(f"/subjects/{SUBJECT}/versions/abc"), 422, 42202)
    assert_error(await http.get(f"/subjects/{SUBJECT}/versions/0"), 422, 42202)
    assert_error(await http.get("/schemas/ids/999"), 404, 40403)
    assert_error(await http.get("/schemas/ids/999/schema"), 404, 40403)
    assert_error(await http.get("/schemas/ids/999/subjects"), 404, 40403)
    assert_error(await http.get("/schemas/ids/4294967280"), 404, 40403)  # beyond int32
    assert_error(await post(http, f"/subjects/{SUBJECT}", {"schema": record(NAMA)}), 404, 40403)
    assert_error(await post(http, "/subjects/nope", {"schema": V1_SCHEMA}), 404, 40401)

    bad = assert_error(
        await post(http, f"/subjects/{SUBJECT}/versions", {"schema": '{"type": "recor"}'}),
        422,
        42201,
    )
    assert "recor" in bad["message"]
    assert_error(
        await post(http, f"/subjects/{SUBJECT}/versions", {"schema": "{not json"}), 422, 42201
    )
    assert_error(await post(http, f"/subjects/{SUBJECT}/versions", {"nothing": 1}), 422, 42201)
    proto = assert_error(
        await post(
            http,
            f"/subjects/{SUBJECT}/versions",
            {"schema": "syntax = 1;", "schemaType": "PROTOBUF"},
        ),
        422,
        42201,
    )
    assert "PROTOBUF" in proto["message"]

    assert_error(await put(http, "/config", {"compatibility": "SIDEWAYS"}), 422, 42203)
    assert_error(await put(http, f"/config/{SUBJECT}", {"compatibility": 5}), 422, 42203)
    assert_error(await put(http, "/mode", {"mode": "WRITEONLY"}), 422, 42204)
    assert_error(await http.get(f"/config/{SUBJECT}"), 404, 40408)
    assert_error(await http.get("/no/such/path"), 404, 404)

    # Garbage bodies: a Confluent error, and the server keeps serving.
    garbage = await http.post(f"/subjects/{SUBJECT}/versions", content=b"\x00\xffgarbage{")
    assert_error(garbage, 400, 400)
    assert_error(await post(http, f"/subjects/{SUBJECT}/versions", [1, 2]), 422, 422)
    assert (await http.get("/subjects")).status_code == 200


async def test_body_over_one_mib_is_413(http: httpx.AsyncClient) -> None:
    huge = {"schema": record({"name": "x", "type": "string", "doc": "x" * (1024 * 1024)})}
    assert_error(await post(http, f"/subjects/{SUBJECT}/versions", huge), 413, 413)
    ok = await post(http, f"/subjects/{SUBJECT}/versions", {"schema": V1_SCHEMA})
    assert ok.status_code == 200


async def test_fifty_concurrent_registrations_get_one_id(server: RegistryServer) -> None:
    async def one() -> tuple[int, int]:
        async with httpx.AsyncClient(base_url=server.url) as http:
            r = await post(http, f"/subjects/{SUBJECT}/versions", {"schema": V1_SCHEMA})
            assert r.status_code == 200, r.text
            return r.json()["id"], r.json()["version"]

    results = await asyncio.gather(*(one() for _ in range(50)))
    assert len(set(results)) == 1
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get(f"/subjects/{SUBJECT}/versions")).json() == [1]


async def test_compatibility_levels_global_and_per_subject(http: httpx.AsyncClient) -> None:
    assert (await http.get("/config")).json() == {"compatibilityLevel": "BACKWARD"}
    await post(http, f"/subjects/{SUBJECT}/versions", {"schema": V1_SCHEMA})

    # BACKWARD (default): a new field without a default cannot read old data.
    breaking = record(NIK, NAMA)
    check = await post(
        http,
        f"/compatibility/subjects/{SUBJECT}/versions/latest?verbose=true",
        {"schema": breaking},
    )
    assert check.json()["is_compatible"] is False
    [message] = check.json()["messages"]
    assert "/fields/nama" in message and "READER_FIELD_MISSING_DEFAULT_VALUE" in message
    quiet = await post(http, f"/compatibility/subjects/{SUBJECT}/versions/1", {"schema": breaking})
    assert quiet.json() == {"is_compatible": False}

    refused = assert_error(
        await post(http, f"/subjects/{SUBJECT}/versions", {"schema": breaking}), 409, 409
    )
    assert "/fields/nama" in refused["message"]
    assert refused["messages"]

    # With a default it is compatible and becomes version 2.
    fine = record(NIK, NAMA_DEFAULT)
    ok = await post(
        http, f"/compatibility/subjects/{SUBJECT}/versions/latest?verbose=True", {"schema": fine}
    )
    assert ok.json() == {"is_compatible": True, "messages": []}
    assert (await post(http, f"/subjects/{SUBJECT}/versions", {"schema": fine})).json()[
        "version"
    ] == 2

    # Per-subject NONE lets anything through; the global level stays.
    assert (await put(http, f"/config/{SUBJECT}", {"compatibility": "NONE"})).json() == {
        "compatibility": "NONE"
    }
    assert (await http.get(f"/config/{SUBJECT}")).json() == {"compatibilityLevel": "NONE"}
    assert (await http.get("/config")).json() == {"compatibilityLevel": "BACKWARD"}
    v3 = await post(http, f"/subjects/{SUBJECT}/versions", {"schema": record(NAMA)})
    assert v3.json()["version"] == 3
    assert (await http.delete(f"/config/{SUBJECT}")).json() == {"compatibilityLevel": "NONE"}
    assert (await http.get(f"/config/{SUBJECT}?defaultToGlobal=true")).json() == {
        "compatibilityLevel": "BACKWARD"
    }

    # FORWARD_TRANSITIVE globally: v1 (nik only) cannot read data without nik.
    assert (await put(http, "/config", {"compatibility": "forward_transitive"})).json() == {
        "compatibility": "FORWARD_TRANSITIVE"
    }
    all_versions = await post(
        http,
        f"/compatibility/subjects/{SUBJECT}/versions?verbose=true",
        {"schema": record(NAMA_DEFAULT)},
    )
    assert all_versions.json()["is_compatible"] is False
    assert any("version 1" in m and "FORWARD" in m for m in all_versions.json()["messages"])
    assert (await http.delete("/config")).json() == {"compatibilityLevel": "FORWARD_TRANSITIVE"}
    assert (await http.get("/config")).json() == {"compatibilityLevel": "BACKWARD"}


async def test_soft_and_permanent_delete(http: httpx.AsyncClient) -> None:
    await put(http, f"/config/{SUBJECT}", {"compatibility": "NONE"})
    first = (await post(http, f"/subjects/{SUBJECT}/versions", {"schema": V1_SCHEMA})).json()
    second = (await post(http, f"/subjects/{SUBJECT}/versions", {"schema": record(NAMA)})).json()
    await post(http, f"/subjects/{SUBJECT}/versions", {"schema": record(NIK, NAMA)})

    # Permanent delete needs a soft delete first.
    assert_error(await http.delete(f"/subjects/{SUBJECT}/versions/2?permanent=true"), 404, 40407)
    assert (await http.delete(f"/subjects/{SUBJECT}/versions/2")).json() == 2
    assert_error(await http.delete(f"/subjects/{SUBJECT}/versions/2"), 404, 40406)
    assert (await http.get(f"/subjects/{SUBJECT}/versions")).json() == [1, 3]
    assert (await http.get(f"/subjects/{SUBJECT}/versions?deleted=true")).json() == [1, 2, 3]
    assert_error(await http.get(f"/subjects/{SUBJECT}/versions/2"), 404, 40402)
    assert (await http.get(f"/subjects/{SUBJECT}/versions/2?deleted=true")).json()["id"] == second[
        "id"
    ]
    # A soft-deleted version's id still decodes old data.
    assert (await http.get(f"/schemas/ids/{second['id']}")).status_code == 200
    assert (await http.delete(f"/subjects/{SUBJECT}/versions/2?permanent=true")).json() == 2
    assert_error(await http.get(f"/schemas/ids/{second['id']}"), 404, 40403)

    assert_error(await http.delete(f"/subjects/{SUBJECT}?permanent=true"), 404, 40405)
    assert (await http.delete(f"/subjects/{SUBJECT}")).json() == [1, 3]
    assert_error(await http.delete(f"/subjects/{SUBJECT}"), 404, 40404)
    assert (await http.get("/subjects")).json() == []
    assert (await http.get("/subjects?deleted=true")).json() == [SUBJECT]
    assert_error(await http.get(f"/subjects/{SUBJECT}/versions"), 404, 40401)
    assert (await http.delete(f"/subjects/{SUBJECT}?permanent=true")).json() == [1, 3]
    assert (await http.get("/subjects?deleted=true")).json() == []
    assert_error(await http.get(f"/schemas/ids/{first['id']}"), 404, 40403)
    assert_error(await http.delete(f"/subjects/{SUBJECT}"), 404, 40401)

    # Ids are never reused, even after every schema was deleted.
    again = (await post(http, f"/subjects/{SUBJECT}/versions", {"schema": V1_SCHEMA})).json()
    assert again["id"] > max(first["id"], second["id"])


async def test_readonly_mode_rejects_writes(http: httpx.AsyncClient) -> None:
    await post(http, f"/subjects/{SUBJECT}/versions", {"schema": V1_SCHEMA})
    assert (await http.get("/mode")).json() == {"mode": "READWRITE"}
    assert (await put(http, "/mode", {"mode": "READONLY"})).json() == {"mode": "READONLY"}
    assert_error(
        await post(http, f"/subjects/{SUBJECT}/versions", {"schema": record(NIK, NAMA_DEFAULT)}),
        422,
        42205,
    )
    assert_error(await http.delete(f"/subjects/{SUBJECT}"), 422, 42205)
    # Reads still work.
    assert (await http.get(f"/subjects/{SUBJECT}/versions")).json() == [1]
    await put(http, "/mode", {"mode": "READWRITE"})
    ok = await post(http, f"/subjects/{SUBJECT}/versions", {"schema": record(NIK, NAMA_DEFAULT)})
    assert ok.status_code == 200

    # Subject-level mode.
    assert (await put(http, f"/mode/{SUBJECT}", {"mode": "READONLY"})).json() == {
        "mode": "READONLY"
    }
    assert (await http.get(f"/mode/{SUBJECT}")).json() == {"mode": "READONLY"}
    assert_error(await http.delete(f"/subjects/{SUBJECT}/versions/1"), 422, 42205)
    assert (await http.delete(f"/mode/{SUBJECT}")).json() == {"mode": "READONLY"}
    assert_error(await http.get(f"/mode/{SUBJECT}"), 404, 40409)


async def test_import_mode_with_explicit_ids(http: httpx.AsyncClient) -> None:
    # Explicit ids are refused outside IMPORT mode...
    assert_error(
        await post(
            http, f"/subjects/{SUBJECT}/versions", {"schema": V1_SCHEMA, "id": 42, "version": 3}
        ),
        422,
        42205,
    )
    assert (await put(http, "/mode", {"mode": "IMPORT"})).json() == {"mode": "IMPORT"}
    r = await post(
        http, f"/subjects/{SUBJECT}/versions", {"schema": V1_SCHEMA, "id": 42, "version": 3}
    )
    assert r.json()["id"] == 42 and r.json()["version"] == 3
    # Idempotent; a conflicting id or version is refused.
    again = await post(
        http, f"/subjects/{SUBJECT}/versions", {"schema": V1_SCHEMA, "id": 42, "version": 3}
    )
    assert again.json()["id"] == 42
    assert_error(
        await post(
            http, "/subjects/x-value/versions", {"schema": record(NAMA), "id": 42, "version": 1}
        ),
        422,
        42207,
    )
    assert_error(
        await post(
            http, f"/subjects/{SUBJECT}/versions", {"schema": record(NAMA), "id": 43, "version": 3}
        ),
        422,
        42207,
    )
    # IMPORT on a non-empty registry needs force.
    await put(http, "/mode", {"mode": "READWRITE"})
    assert_error(await put(http, "/mode", {"mode": "IMPORT"}), 422, 42205)
    assert (await put(http, "/mode?force=true", {"mode": "IMPORT"})).json() == {"mode": "IMPORT"}
    await put(http, "/mode", {"mode": "READWRITE"})
    # New ids continue after the imported ones.
    fresh = await post(http, "/subjects/new-value/versions", {"schema": record(NAMA)})
    assert fresh.json()["id"] > 42


async def test_client_errors_and_cache(client: SchemaRegistryClient) -> None:
    schema_id = await client.register(SUBJECT, V1_SCHEMA)
    assert await client.register(SUBJECT, V1_SCHEMA) == schema_id
    assert await client.lookup(SUBJECT, V1_SCHEMA) == schema_id
    assert await client.get_schema(schema_id) == V1_SCHEMA
    with pytest.raises(SubjectNotFound):
        await client.get_versions("nope")
    with pytest.raises(SchemaNotFound) as missing:
        await client.get_schema(12345)
    assert isinstance(missing.value, LookupError)
    with pytest.raises(IncompatibleSchema) as incompatible:
        await client.register(SUBJECT, record(NIK, NAMA))
    assert any("/fields/nama" in r for r in incompatible.value.reasons)
    with pytest.raises(InvalidSchema):
        await client.register(SUBJECT, '{"type": "nope"}')
    check = await client.test_compatibility(SUBJECT, record(NIK, NAMA))
    assert not check.is_compatible and check.messages
    await client.set_mode("READONLY")
    with pytest.raises(OperationNotPermitted):
        await client.register(SUBJECT, record(NIK, NAMA_DEFAULT))
    await client.set_mode("READWRITE")


async def test_export_import_round_trip(
    pg_dsn: str, server: RegistryServer, client: SchemaRegistryClient
) -> None:
    catalog = load_catalog()
    kematian = catalog.get("dukcapil.kematian_dicatat.v1")
    izin = catalog.get("dpmptsp.izin_terbit.v1")
    await client.register("filler-value", record(NAMA))  # ids do not start at 1 for the events
    serializer = AvroSerializer(client, auto_register=True)
    old_kematian = await serializer.serialize(kematian, example_event(kematian))
    old_izin = await serializer.serialize(izin, example_event(izin))
    await client.register(SUBJECT, V1_SCHEMA)
    await client.register(SUBJECT, record(NIK, NAMA_DEFAULT))
    await client.delete_version(SUBJECT, 1)
    await client.set_compatibility("FULL", kematian.subject)
    await client.set_compatibility("NONE")
    doc = orjson.loads(orjson.dumps(await export_registry(client)))  # survives JSON

    # A second, empty database with its own registry.
    admin = await connect(pg_dsn)
    name = f"lintas_test_restore_{id(doc)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = f"{pg_dsn.rpartition('/')[0]}/{name}"
    try:
        await migrate(dsn)
        async with (
            RegistryServer(dsn, port=0) as restored_server,
            SchemaRegistryClient(restored_server.url) as restored,
        ):
            counts = await import_registry(restored, doc)
            assert counts["versions"] == 5
            assert await export_registry(restored) == doc
            assert await restored.get_mode() == "READWRITE"
            assert await restored.get_compatibility(kematian.subject) == "FULL"
            # Old wire bytes decode against the restored registry.
            decoder = AvroDeserializer(restored)
            assert (await decoder.deserialize(old_kematian))["nik"] == example_event(kematian)[
                "nik"
            ]
            assert await decoder.deserialize(old_izin) == (
                await AvroDeserializer(client).deserialize(old_izin)
            )
            # A second import is refused: the registry is no longer empty.
            with pytest.raises(OperationNotPermitted):
                await import_registry(restored, doc)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

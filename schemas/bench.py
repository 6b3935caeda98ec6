"""``lintas bench serde``: Lintas's wire-format serde against raw fastavro, same records.

The baseline is what any Python service would write by hand: fastavro's schemaless writer
and reader on a BytesIO per record. Lintas adds the Confluent header, the schema-id cache
and typed errors; the ratio shows what that costs.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

import fastavro

from lintas.settings import Settings

from .catalog import load_catalog
from .examples import example_event
from .serde import AvroDeserializer, AvroSerializer, decode, encode
from .testing import InMemorySchemaResolver

__all__ = ["bench_serde"]

# The catalog's largest example (~260 bytes on the wire): a citizen complaint with free text.
EVENT_TYPE = "diskominfo.pengaduan_diterima.v1"


def _rate(fn: Callable[[], None], seconds: float, batch: int = 1000) -> float:
    """Operations per second of ``fn`` over about ``seconds`` (whole batches only)."""
    fn()  # warm caches before timing
    done = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(batch):
            fn()
        done += batch
    return done / elapsed


async def _async_rate(fn: Callable[[], Any], seconds: float, batch: int = 1000) -> float:
    await fn()
    done = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(batch):
            await fn()
        done += batch
    return done / elapsed


async def bench_serde(
    *, seconds: float = 3.0, registry_url: str | None = None, settings: Settings | None = None
) -> dict[str, Any]:
    """Measure encode+decode round trips per second, Lintas vs fastavro.

    Args:
        seconds: time spent on each of the measured loops.
        registry_url: when given, schema ids come from that registry (through the client
            cache, as in production); otherwise from an in-memory resolver.
        settings: where the registry is, when ``registry_url`` is not given.
    """
    if registry_url is None and settings is not None:
        from lintas.endpoints import registry_url as configured_registry

        registry_url = configured_registry(settings)
    event_type = load_catalog().get(EVENT_TYPE)
    record = example_event(event_type)
    parsed = event_type.parsed_schema
    resolver: Any = InMemorySchemaResolver()
    if registry_url:
        from .registry import SchemaRegistryClient

        resolver = SchemaRegistryClient(registry_url)
    serializer = AvroSerializer(resolver, auto_register=True)
    deserializer = AvroDeserializer(resolver)
    wire = await serializer.serialize(event_type, record)
    schema_id = await serializer.schema_id(event_type)

    def raw_round_trip() -> None:
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, parsed, record)
        buf.seek(0)
        fastavro.schemaless_reader(buf, parsed, None)

    def lintas_round_trip() -> None:
        decode(encode(schema_id, parsed, record), parsed)

    async def lintas_async_round_trip() -> None:
        data = await serializer.serialize(event_type, record)
        await deserializer.deserialize(data, topic=event_type.topic)

    baseline = _rate(raw_round_trip, seconds)
    core = _rate(lintas_round_trip, seconds)
    full = await _async_rate(lintas_async_round_trip, seconds)
    figures: dict[str, Any] = {
        "bench": "serde",
        "event_type": EVENT_TYPE,
        "record_bytes": len(wire),
        "lintas_per_s": round(full),
        "baseline_per_s": round(baseline),
        "ratio": round(full / baseline, 3),
        "lintas_sync_per_s": round(core),
        "sync_ratio": round(core / baseline, 3),
        "unit": "encode+decode round trips",
    }
    if registry_url:
        from .registry.bench import bench_registry_lookups

        lookups = await bench_registry_lookups(registry_url, seconds=seconds, concurrency=50)
        figures["registry"] = lookups
        close = getattr(resolver, "aclose", None) or getattr(resolver, "close", None)
        if close is not None:
            await close()
    return figures

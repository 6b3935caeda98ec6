"""Routing: one delivery per subscriber, only the allowed fields, no NIK where not allowed."""

from __future__ import annotations

from lintas.directory.models import Subscription
from lintas.directory.routing import route
from lintas.schemas import AvroDeserializer, example_event, load_catalog
from lintas.schemas.testing import InMemorySchemaResolver
from lintas.streams import Router, StreamTopics, projected_schema, read_envelope
from lintas.streams.testing import cloudevent_headers

KEMATIAN = load_catalog().get("dukcapil.kematian_dicatat.v1")
PURPOSE = "Stopping social aid to recipients who have died (UU 27/2022 Pasal 20)."


class Registry(InMemorySchemaResolver):
    def __init__(self) -> None:
        super().__init__()
        self.levels: dict[str, str] = {}

    async def set_compatibility(self, level: str, subject: str | None = None) -> str:
        self.levels[subject or ""] = level
        return level


class View:
    """The part of DirectoryView the router uses, over fixed subscriptions."""

    def __init__(self, subscriptions: list[Subscription]) -> None:
        self.subscriptions = subscriptions
        self.started = 0

    async def start(self) -> None:
        self.started += 1

    def route(self, event_type_id: str, record):
        return route(self.subscriptions, event_type_id, record)


def _sub(name: str, subscriber: str, fields: list[str], **flt) -> Subscription:
    return Subscription(
        name=name,
        subscriber=subscriber,
        event_types=["dukcapil.*"],
        fields=fields,
        filter=flt,
        purpose=PURPOSE,
    )


async def test_each_subscriber_gets_one_minimised_record() -> None:
    registry = Registry()
    view = View(
        [
            _sub("dinsos-a", "dinsos", ["nik", "tanggal_kematian"]),
            _sub("dinsos-b", "dinsos", ["nomor_kk"], kode_wilayah_prefix="32.73"),
            _sub("dasbor", "dasbor", ["kode_wilayah"]),
            _sub("jauh", "jauh", ["*"], kode_wilayah_prefix="33"),
        ]
    )
    router = Router(registry, StreamTopics("t."), view)  # type: ignore[arg-type]
    headers = [*cloudevent_headers(KEMATIAN, event_id="e-1", subject="3273"), ("x-app", b"pii")]
    record = example_event(KEMATIAN)
    out = await router.deliveries(
        KEMATIAN, read_envelope(headers), record, key=b"3273", headers=headers
    )
    assert [d.topic for d in out] == ["t.lintas.deliver.dasbor", "t.lintas.deliver.dinsos"]
    dasbor, dinsos = out
    decode = AvroDeserializer(registry).deserialize
    assert await decode(dinsos.value) == {
        "nik": record["nik"],
        "tanggal_kematian": record["tanggal_kematian"],
        "nomor_kk": record["nomor_kk"],
    }
    assert dinsos.key == b"3273" and ("ce_subject", b"3273") in dinsos.headers
    assert ("lintas.subscriptions", b"dinsos-a,dinsos-b") in dinsos.headers
    # No NIK for the dashboard: not in the value, the key or the headers.
    assert await decode(dasbor.value) == {"kode_wilayah": record["kode_wilayah"]}
    assert dasbor.key == b"e-1"
    assert "ce_subject" not in dict(dasbor.headers) and "x-app" not in dict(dasbor.headers)
    subject = f"t.lintas.deliver.dinsos-{KEMATIAN.full_name}"
    assert registry.levels[subject] == "NONE"
    assert view.started == 1


def test_a_projection_keeps_schema_order_and_everything_for_star() -> None:
    projected = projected_schema(KEMATIAN, ["tanggal_kematian", "nik"])
    assert [f["name"] for f in projected["fields"]] == ["nik", "tanggal_kematian"]
    assert projected["name"] == KEMATIAN.schema["name"]
    assert projected_schema(KEMATIAN, ["*"]) == KEMATIAN.schema

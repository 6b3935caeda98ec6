"""The processor: one record in, one canonical record or one dead letter out (no Kafka)."""

from __future__ import annotations

import datetime as dt

import pytest

from lintas.schemas import (
    AvroDeserializer,
    AvroSerializer,
    example_event,
    load_catalog,
)
from lintas.schemas.registry import RegistryUnavailable, SubjectNotFound
from lintas.schemas.testing import InMemorySchemaResolver
from lintas.streams import Accepted, Processor, Rejected, SourceRecord, StreamTopics
from lintas.streams.dlq import Reason
from lintas.streams.testing import cloudevent_headers, varied_event

CATALOG = load_catalog()
KEMATIAN = CATALOG.get("dukcapil.kematian_dicatat.v1")
IZIN = CATALOG.get("dpmptsp.izin_terbit.v1")
NAMES = StreamTopics("t1.")


def _now() -> dt.datetime:
    # Taken at each call, not at import: records carry the real time as ce_time, and a
    # long suite run would otherwise put them beyond the allowed skew of an import-time now.
    return dt.datetime.now(dt.UTC)


class Registry(InMemorySchemaResolver):
    """The in-memory resolver plus what the worker asks of a registry for unknown topics."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def get_schema(self, schema_id: int):
        if self.down:
            raise RegistryUnavailable("http://registry", "connection refused")
        return await super().get_schema(schema_id)

    async def get_latest_version(self, subject: str):
        raise SubjectNotFound(subject)


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
def processor(registry: Registry) -> Processor:
    return Processor(registry, NAMES, max_record_bytes=64 * 1024)  # type: ignore[arg-type]


async def _record(registry, event_type=KEMATIAN, event=None, *, topic_type=None, **changes):
    event = event if event is not None else varied_event(event_type, 1)
    value = await AvroSerializer(registry, auto_register=True).serialize(event_type, event)
    topic_type = topic_type or event_type
    fields = dict(
        topic=NAMES.source(topic_type.id),
        partition=2,
        offset=17,
        timestamp_ms=1_749_524_700_000,
        key=b"3273",
        value=value,
        headers=cloudevent_headers(topic_type, event_id="e-1"),
    )
    fields.update(changes)
    return SourceRecord(**fields)


async def test_a_valid_event_becomes_its_canonical_record(processor, registry) -> None:
    event = varied_event(KEMATIAN, 1)
    outcome = await processor.process(await _record(registry, event=event), now=_now())
    assert isinstance(outcome, Accepted)
    assert outcome.topic == "t1.lintas.canonical.dukcapil.kematian_dicatat.v1"
    assert outcome.dedup_key == "/opd/dukcapil/testapp e-1"
    assert outcome.key == b"3273"
    canonical = await AvroDeserializer(registry).deserialize(outcome.value)
    assert canonical["payload"] == event
    assert canonical["wilayah"]["kecamatan"] == "Sukasari"
    assert canonical["source_partition"] == 2 and canonical["source_offset"] == 17
    assert ("register", "t1.lintas.canonical.dukcapil.kematian_dicatat.v1-value") in registry.calls


@pytest.mark.parametrize(
    ("change", "reason", "field"),
    [
        ({"value": b"\xffgarbage"}, Reason.WIRE_FORMAT, None),
        ({"value": None}, Reason.WIRE_FORMAT, None),
        ({"value": b"\x00\x00\x00\x03\xe7" + b"\x02" * 40}, Reason.UNKNOWN_SCHEMA_ID, None),
        ({"headers": [("ce_id", b"e-1")]}, Reason.MISSING_ENVELOPE, "ce_type"),
        ({"value": b"\x00" + b"\x00" * 65_540}, Reason.TOO_LARGE, None),
        ({"topic": "t1.opd.dukcapil.tidak_ada.v1"}, Reason.UNKNOWN_EVENT_TYPE, None),
    ],
)
async def test_bad_records_become_dead_letters_with_their_reason(
    processor, registry, change, reason, field
) -> None:
    record = await _record(registry, **change)
    outcome = await processor.process(record, now=_now())
    assert isinstance(outcome, Rejected)
    assert (outcome.reason, outcome.field) == (reason, field)
    assert outcome.topic == "t1.lintas.dlq"
    assert outcome.key == record.key and outcome.value == record.value
    assert outcome.headers[: len(record.headers)] == list(record.headers)
    names = dict(outcome.headers)
    assert names["lintas.dlq.reason"] == reason.value.encode()
    assert names["lintas.dlq.topic"] == record.topic.encode()
    assert (names["lintas.dlq.partition"], names["lintas.dlq.offset"]) == (b"2", b"17")


async def test_a_truncated_body_is_undecodable(processor, registry) -> None:
    record = await _record(registry)
    outcome = await processor.process(await _record(registry, value=record.value[:12]), now=_now())
    assert isinstance(outcome, Rejected) and outcome.reason is Reason.UNDECODABLE


async def test_another_event_types_record_is_a_schema_mismatch(processor, registry) -> None:
    record = await _record(registry, IZIN, example_event(IZIN), topic_type=KEMATIAN)
    outcome = await processor.process(record, now=_now())
    assert isinstance(outcome, Rejected) and outcome.reason is Reason.SCHEMA_MISMATCH


async def test_a_ce_type_of_another_event_type_is_an_invalid_envelope(processor, registry) -> None:
    headers = cloudevent_headers(IZIN, event_id="e-1")
    headers = [(k, v) if k != "ce_source" else (k, b"/opd/dukcapil/x") for k, v in headers]
    outcome = await processor.process(await _record(registry, headers=headers), now=_now())
    assert isinstance(outcome, Rejected)
    assert (outcome.reason, outcome.field) == (Reason.INVALID_ENVELOPE, "ce_type")


async def test_every_broken_rule_is_listed_and_the_first_one_named(processor, registry) -> None:
    event = {
        **varied_event(KEMATIAN, 1),
        "kode_wilayah": "32.73.01.9999",
        "nik": "3273013213480001",
    }
    outcome = await processor.process(await _record(registry, event=event), now=_now())
    assert isinstance(outcome, Rejected)
    assert (outcome.reason, outcome.field) == (Reason.INVALID_NIK, "nik")
    assert "kode_wilayah: kode wilayah 32.73.01.9999" in outcome.message


async def test_a_future_ce_time_is_refused(processor, registry) -> None:
    future = _now() + dt.timedelta(hours=1)
    headers = cloudevent_headers(KEMATIAN, event_id="e-1", time=future)
    outcome = await processor.process(await _record(registry, headers=headers), now=_now())
    assert isinstance(outcome, Rejected)
    assert (outcome.reason, outcome.field) == (Reason.FUTURE_DATE, "ce_time")


async def test_an_unreachable_registry_is_retried_not_dead_lettered(processor, registry) -> None:
    record = await _record(registry)
    registry.down = True
    with pytest.raises(RegistryUnavailable):
        await processor.process(record, now=_now())


async def test_an_unexpected_failure_costs_one_dead_letter(processor, registry) -> None:
    async def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    processor.encoder.encode = broken  # type: ignore[method-assign]
    outcome = await processor.process(await _record(registry), now=_now())
    assert isinstance(outcome, Rejected)
    assert outcome.reason is Reason.PROCESSING_ERROR
    assert "ZeroDivisionError: a bug" in outcome.message

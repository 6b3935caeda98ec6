"""The dashboard's in-memory windows and the catalog's field table, without any service."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from lintas.portal.catalog import curl_snippet, field_rows, type_label
from lintas.portal.data import DeadLetterWindow, PanelState, TrafficWindow, parse_metric
from lintas.portal.data.traffic import MetricPoint
from lintas.schemas import load_catalog
from lintas.streams.metrics import MetricRecord, Outcome, encode_metric

NOW = dt.datetime(2025, 8, 18, 5, 30, 20, tzinfo=dt.UTC)  # 12.30 WIB
JAKARTA = ZoneInfo("Asia/Jakarta")


def _metric(
    minutes_ago: int,
    count: int,
    *,
    worker: str = "w1",
    outcome: Outcome = Outcome.ACCEPTED,
    event_type: str = "dukcapil.kematian_dicatat.v1",
) -> SimpleNamespace:
    start = NOW.replace(second=0, microsecond=0) - dt.timedelta(minutes=minutes_ago)
    record = MetricRecord(
        window_start=start, window_end=start + dt.timedelta(minutes=1),
        opd=event_type.split(".")[0], event_type=event_type, outcome=outcome, count=count,
        worker=worker,
    )  # fmt: skip
    return SimpleNamespace(value=encode_metric(record)[1])


def test_parse_metric_reads_what_the_stream_workers_write() -> None:
    point = parse_metric(_metric(3, 7, worker="host-1:42").value)
    assert point == MetricPoint(
        minute=NOW.replace(second=0, microsecond=0) - dt.timedelta(minutes=3),
        opd="dukcapil", event_type="dukcapil.kematian_dicatat.v1", outcome="accepted", count=7,
        worker="host-1:42",
    )  # fmt: skip
    assert parse_metric(b'{"outcome": "something-else"}') is None
    assert parse_metric(None) is None


def test_traffic_sums_worker_shares_once_each() -> None:
    window = TrafficWindow(JAKARTA)
    assert window.panel(now=NOW).state is PanelState.NO_DATA
    for record in (_metric(1, 10), _metric(1, 5, worker="w2"), _metric(1, 10), _metric(2, 4),
                   _metric(1, 3, outcome=Outcome.DEAD_LETTERED),
                   _metric(1, 2, event_type="bapenda.pajak_dibayar.v1")):  # fmt: skip
        window.handle(record)  # the repeated w1 share is a re-read, counted once
    panel = window.panel(now=NOW)
    assert panel.state is PanelState.OK and panel.data is not None
    data = panel.data
    assert data.last_minute_total == 10 + 5 + 2
    assert data.total_24h == 10 + 5 + 4 + 2
    rows = {r.event_type: (r.accepted, r.dead_lettered, r.duplicate) for r in data.by_type_24h}
    assert rows == {
        "dukcapil.kematian_dicatat.v1": (19, 3, 0),
        "bapenda.pajak_dibayar.v1": (2, 0, 0),
    }
    assert len(data.per_minute) == 60
    assert data.per_minute[-2][1] == {"dukcapil": 15, "bapenda": 2}
    assert data.per_day[-1] == (dt.date(2025, 8, 18), {"dukcapil": 19, "bapenda": 2})


def test_old_minutes_fold_into_days_and_leave_the_24h_table() -> None:
    window = TrafficWindow(JAKARTA)
    window.handle(_metric(60 * 30, 8))  # 30 hours ago: yesterday in WIB
    window.handle(_metric(60 * 24 * 9, 99))  # beyond the week: dropped
    panel = window.panel(now=NOW)
    assert panel.data is not None
    assert panel.data.total_24h == 0 and panel.data.by_type_24h == []
    days = dict(panel.data.per_day)
    assert days[dt.date(2025, 8, 17)] == {"dukcapil": 8}
    assert sum(sum(v.values()) for v in days.values()) == 8


def _dead(reason: str | None, *, opd: str | None = None, source: str | None = None,
          age: dt.timedelta = dt.timedelta(minutes=5)) -> SimpleNamespace:  # fmt: skip
    headers = [("ce_id", b"x")]
    if reason:
        headers.append(("lintas.dlq.reason", reason.encode()))
    if opd:
        headers.append(("lintas.dlq.opd", opd.encode()))
    if source:
        headers.append(("ce_source", source.encode()))
    return SimpleNamespace(headers=headers, timestamp=int((NOW - age).timestamp() * 1000))


def test_dead_letters_by_reason_and_opd_within_24_hours() -> None:
    window = DeadLetterWindow()
    assert window.panel(now=NOW).state is PanelState.NO_DATA
    records = [
        _dead("invalid_nik", opd="dukcapil"),
        _dead("invalid_nik", source="/opd/dinkes/simpus"),
        _dead("unknown_schema_id", opd="dukcapil"),
        _dead(None),
        _dead("invalid_nik", opd="dukcapil", age=dt.timedelta(hours=25)),
    ]
    for record in records:
        window.handle(record)
    panel = window.panel(now=NOW)
    assert panel.data is not None
    assert panel.data.total_24h == 4
    assert panel.data.by_reason == [("invalid_nik", 2), ("unknown", 1), ("unknown_schema_id", 1)]
    assert dict(panel.data.by_opd) == {"dukcapil": 2, "dinkes": 1, "unknown": 1}


def test_field_rows_flatten_nested_records_with_pii_tags() -> None:
    kk = load_catalog().get("dukcapil.kk_diperbarui.v1")
    rows = {r.path: r for r in field_rows(kk)}
    assert rows["anggota"].type == "array<record>"
    assert rows["anggota[].nik"].pii == "nik" and rows["anggota[].nik"].depth == 1
    assert rows["alasan_perubahan"].symbols[0] == "KK_BARU"
    tagged = {r.path: r.pii for r in field_rows(kk) if r.pii}
    assert tagged == dict(kk.pii_fields)
    kematian = load_catalog().get("dukcapil.kematian_dicatat.v1")
    by_path = {r.path: r for r in field_rows(kematian)}
    assert not by_path["tempat_kematian"].required and by_path["nik"].required
    assert by_path["tanggal_kematian"].type == "date"
    assert type_label(["null", "string"]) == "string | null"


def test_curl_snippet_names_the_gateway_route() -> None:
    et = load_catalog().get("bapenda.pajak_dibayar.v1")
    snippet = curl_snippet(et, "http://127.0.0.1:8080")
    assert "POST http://127.0.0.1:8080/v1/events/bapenda.pajak_dibayar.v1" in snippet
    assert "Authorization: Bearer $LINTAS_API_KEY" in snippet


def test_sdk_snippet_calls_the_real_producer_sdk() -> None:
    import inspect
    import textwrap

    from lintas.portal.catalog import sdk_snippet
    from lintas.producers import EventProducer

    snippet = sdk_snippet(load_catalog().get("dinsos.bansos_disalurkan.v1"))
    assert 'EventProducer(app="APP_ID", opd="dinsos")' in snippet
    assert {"app", "opd"} <= set(inspect.signature(EventProducer).parameters)
    assert inspect.iscoroutinefunction(EventProducer.send)
    imports, _, body = snippet.partition("\n\n")
    compile(imports + "\n\nasync def main(data):\n" + textwrap.indent(body, "    "), "s", "exec")

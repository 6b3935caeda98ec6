"""Positions, stable ids and the snapshot filter: what makes a re-read produce the same events."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
from pathlib import Path

import pytest

from lintas.producers.capture import (
    BinlogPosition,
    CaptureState,
    Change,
    ChunkMark,
    Op,
    StateLocked,
    stable_event_id,
)
from lintas.producers.capture.pglogical import _xid_visible
from lintas.producers.capture.snapshot import SnapshotFilter
from lintas.producers.capture.types import row_digest


def _change(key: int, position: str = "f:1:0", op: Op = Op.INSERT) -> Change:
    return Change(table="t", op=op, key=(key,), row={"id": key}, position=position)


def test_event_ids_are_stable_and_distinct() -> None:
    first = stable_event_id("simda", _change(1), "bapenda.pajak_dibayar.v1")
    assert first == stable_event_id("simda", _change(1), "bapenda.pajak_dibayar.v1")
    others = {
        stable_event_id("simda", _change(2), "bapenda.pajak_dibayar.v1"),
        stable_event_id("simda", _change(1, "f:1:1"), "bapenda.pajak_dibayar.v1"),
        stable_event_id("simda", _change(1, op=Op.UPDATE), "bapenda.pajak_dibayar.v1"),
        stable_event_id("simpeg", _change(1), "bapenda.pajak_dibayar.v1"),
        stable_event_id("simda", _change(1), "dpmptsp.izin_terbit.v1"),
    }
    assert first not in others and len(others) == 5


def test_row_digests_ignore_column_order() -> None:
    assert row_digest({"a": 1, "b": dt.date(2025, 1, 1)}) == row_digest(
        {"b": dt.date(2025, 1, 1), "a": 1}
    )
    assert row_digest({"a": 1}) != row_digest({"a": 2})


def test_binlog_positions_order_across_files() -> None:
    assert BinlogPosition.of("mariadb-bin.000002", 4) > BinlogPosition.of("mariadb-bin.000001", 9)
    assert BinlogPosition.parse("mariadb-bin.000003:1234:7") == BinlogPosition.of(
        "mariadb-bin.000003", 1234
    )


def test_state_keeps_types_across_a_reopen_and_one_process_holds_it(tmp_path: Path) -> None:
    state = CaptureState.open(tmp_path, "simda")
    mark = {"value": dt.datetime(2025, 8, 15, 10, 12, 0, 5), "key": [decimal.Decimal("1.5")]}
    asyncio.run(
        state.commit({"poll.t": mark}, chunk=ChunkMark("t", 0, (200, "a"), {"file": "f", "pos": 4}))
    )
    with pytest.raises(StateLocked):
        CaptureState.open(tmp_path, "simda")
    state.close()
    again = CaptureState.open(tmp_path, "simda")
    try:
        assert again.get("poll.t") == mark
        (chunk,) = again.chunks("t")
        assert chunk.upper == (200, "a") and chunk.mark == {"file": "f", "pos": 4}
        again.reset()
        assert again.get("poll.t") is None and again.chunks("t") == []
    finally:
        again.close()


def test_the_snapshot_filter_asks_the_chunk_that_holds_the_key(tmp_path: Path) -> None:
    state = CaptureState.open(tmp_path, "s")
    for seq, upper, pos in [(0, (100,), 10), (1, (200,), 20), (2, None, 30)]:
        asyncio.run(state.commit({}, chunk=ChunkMark("t", seq, upper, {"pos": pos})))
    seen: list[tuple[int, int]] = []

    def at_or_before(mark: dict[str, int], position: int) -> bool:
        seen.append((mark["pos"], position))
        return position <= mark["pos"]

    snapshot = SnapshotFilter(state, ["t"], at_or_before)  # type: ignore[arg-type]
    assert snapshot.skip(_change(100), 10)  # chunk 0 read it after the change
    assert not snapshot.skip(_change(100), 11)  # the change came after chunk 0
    assert snapshot.skip(_change(150), 15) and not snapshot.skip(_change(150), 25)
    assert snapshot.skip(_change(10_000), 30)  # the last chunk is open above
    assert [m for m, _ in seen] == [10, 10, 20, 20, 30]
    other = Change(table="u", op=Op.INSERT, key=(1,), row={}, position="p")
    assert not snapshot.skip(other, 0)
    state.close()


@pytest.mark.parametrize(
    ("xid", "visible"),
    [(99, True), (100, True), (101, False), (150, True), (199, True), (200, False), (250, False)],
)
def test_xid_visibility_in_a_snapshot(xid: int, visible: bool) -> None:
    mark = {"xmin": 100, "xmax": 200, "xip": [100, 101]}
    mark = {"xmin": 101, "xmax": 200, "xip": [101]}
    assert _xid_visible(mark, xid) is visible


def test_xid_visibility_across_the_32_bit_wraparound() -> None:
    epoch = 5 << 32
    mark = {"xmin": epoch + 10, "xmax": epoch + 20, "xip": []}
    assert _xid_visible(mark, 5)  # epoch 5, before xmin
    assert not _xid_visible(mark, 25)  # started after the snapshot
    before_wrap = {"xmin": epoch - 10, "xmax": epoch + 3, "xip": []}
    assert _xid_visible(before_wrap, 0xFFFFFFFF - 20)  # previous epoch, long committed
    assert not _xid_visible(before_wrap, 7)  # this epoch, after xmax

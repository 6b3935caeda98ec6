"""The spool on its own: order, durability, bounds, slots, scrubbing and inspection."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lintas.producers import SpoolFull, SpoolLocked
from lintas.producers._inspect import inspect_spools
from lintas.producers._record import Record, decode_headers, encode_headers
from lintas.producers._spool import Spool

NIK = b"3273012108480001"


def _record(i: int, *, topic: str = "opd.dukcapil.kematian_dicatat.v1", size: int = 100) -> Record:
    event_id = f"id-{i:04d}"
    headers = [("ce_id", event_id.encode()), ("ce_subject", NIK), ("bin", bytes(range(256)))]
    value = b"\x00\x00\x00\x00\x01" + f"secret-value-{i:06d}".encode().ljust(size, b"#")
    return Record(topic, NIK, value, headers, event_id)


async def test_records_come_back_in_order_with_their_bytes(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path, "dukcapil.siak", max_bytes=1 << 20)
    try:
        await spool.append([_record(i) for i in range(5)])
        await spool.append([_record(i) for i in range(5, 8)])
        assert spool.records == 8
        assert spool.bytes == sum(_record(i).size for i in range(8))
        entries = await spool.peek(100)
        assert [e.record for e in entries] == [_record(i) for i in range(8)]
        seqs = [e.seq for e in entries]
        assert seqs == sorted(seqs) and len(set(seqs)) == 8
        assert [e.record.event_id for e in await spool.peek(3)] == ["id-0000", "id-0001", "id-0002"]
    finally:
        await spool.close()


async def test_records_survive_reopening_and_seq_never_goes_back(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path, "app", max_bytes=1 << 20)
    await spool.append([_record(i) for i in range(3)])
    first = await spool.peek(10)
    await spool.delete(first[:2])
    await spool.close()

    again = await Spool.open(tmp_path, "app", max_bytes=1 << 20)
    try:
        entries = await again.peek(10)
        assert [e.record.event_id for e in entries] == ["id-0002"]
        assert again.records == 1 and again.bytes == _record(2).size
        await again.delete(entries)
        await again.append([_record(9)])
        (newest,) = await again.peek(10)
        # AUTOINCREMENT: a record appended after the queue emptied still sorts after all.
        assert newest.seq > first[-1].seq
    finally:
        await again.close()


async def test_a_full_spool_refuses_the_whole_append_with_the_numbers(tmp_path: Path) -> None:
    limit = 20 * _record(0).size
    spool = await Spool.open(tmp_path, "app", max_bytes=limit)
    try:
        await spool.append([_record(i) for i in range(15)])
        with pytest.raises(SpoolFull) as caught:
            await spool.append([_record(i) for i in range(15, 25)])
        error = caught.value
        assert error.used_bytes == 15 * _record(0).size
        assert error.limit_bytes == limit
        assert error.records == 15
        assert error.needed_bytes == 10 * _record(0).size
        assert str(spool.path) in error.message and "15 events" in error.message
        assert spool.records == 15, "a refused append must add nothing"
        assert len(await spool.peek(100)) == 15
    finally:
        await spool.close()


async def test_each_process_gets_its_own_slot_and_an_explicit_slot_is_exclusive(
    tmp_path: Path,
) -> None:
    first = await Spool.open(tmp_path, "app", max_bytes=1 << 20)
    second = await Spool.open(tmp_path, "app", max_bytes=1 << 20)
    try:
        assert (first.slot, second.slot) == (0, 1)
        with pytest.raises(SpoolLocked) as caught:
            await Spool.open(tmp_path, "app", max_bytes=1 << 20, slot=0)
        assert caught.value.pid == os.getpid()
    finally:
        await first.close()
        await second.close()
    reopened = await Spool.open(tmp_path, "app", max_bytes=1 << 20, slot=0)
    await reopened.close()


def test_a_slot_held_by_a_killed_process_is_free_again(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio, sys, time
        from pathlib import Path
        from lintas.producers._spool import Spool

        async def main():
            spool = await Spool.open(Path({str(tmp_path)!r}), "app", max_bytes=1 << 20)
            print(spool.slot, flush=True)
            time.sleep(60)

        asyncio.run(main())
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "0"
        (info,) = inspect_spools(tmp_path, "app")
        assert info.in_use_by == child.pid
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        child.kill()
    (info,) = inspect_spools(tmp_path, "app")
    assert info.in_use_by is None

    import asyncio

    async def reopen() -> int:
        spool = await Spool.open(tmp_path, "app", max_bytes=1 << 20, slot=0)
        await spool.close()
        return spool.slot

    assert asyncio.run(reopen()) == 0


async def test_forwarded_records_leave_no_bytes_on_disk(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path, "app", max_bytes=1 << 22)
    records = [_record(i, size=2000) for i in range(200)]
    await spool.append(records)
    folder = tmp_path / "app"

    def disk() -> bytes:
        return b"".join(p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix != ".lock")

    assert b"secret-value-000123" in disk(), "the test must look where the data is"
    await spool.delete(await spool.peek(1000))
    assert spool.records == 0
    on_disk = disk()
    assert b"secret-value" not in on_disk
    assert NIK not in on_disk
    await spool.close()
    assert b"secret-value" not in disk()


async def test_spool_files_are_private(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path, "app", max_bytes=1 << 20)
    await spool.append([_record(0)])
    try:
        assert stat.S_IMODE((tmp_path / "app").stat().st_mode) == 0o700
        for path in (tmp_path / "app").iterdir():
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    finally:
        await spool.close()


async def test_rejected_records_are_kept_apart_then_requeued_or_dropped(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path, "app", max_bytes=1 << 20)
    try:
        await spool.append([_record(i) for i in range(4)])
        entries = await spool.peek(10)
        await spool.reject(entries[1:3], "not authorized: User:x on t")
        assert (spool.records, spool.rejected) == (2, 2)
        assert [e.record.event_id for e in await spool.peek(10)] == ["id-0000", "id-0003"]
        (info,) = inspect_spools(tmp_path)
        assert info.rejected == {"not authorized: User:x on t": 2}
        assert info.rejected_records == 2

        assert await spool.requeue_rejected() == 2
        assert [e.record.event_id for e in await spool.peek(10)] == [
            "id-0000",
            "id-0003",
            "id-0001",
            "id-0002",
        ]
        assert (spool.records, spool.rejected) == (4, 0)

        await spool.reject((await spool.peek(10))[:1], "refused by the broker: too large")
        assert await spool.drop_rejected() == 1
        assert (spool.records, spool.rejected) == (3, 0)
        assert spool.bytes == 3 * _record(0).size
    finally:
        await spool.close()


async def test_inspection_counts_without_showing_data_and_sees_the_owner(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path, "dukcapil.siak", max_bytes=1 << 20)
    try:
        await spool.append([_record(i, topic="t.a") for i in range(3)])
        await spool.append([_record(i, topic="t.b") for i in range(3, 5)])
        (info,) = inspect_spools(tmp_path)
        assert (info.name, info.slot, info.records) == ("dukcapil.siak", 0, 5)
        assert info.topics == {"t.a": 3, "t.b": 2}
        assert info.bytes == sum(_record(i, topic="t.a").size for i in range(5))
        assert info.oldest_s is not None and info.oldest_s >= 0
        assert info.in_use_by == os.getpid()
        assert "3273" not in repr(info), "inspection must not expose keys"
    finally:
        await spool.close()
    (info,) = inspect_spools(tmp_path, "dukcapil.siak")
    assert info.in_use_by is None
    assert inspect_spools(tmp_path, "nobody") == []


async def test_schema_ids_are_remembered_per_registry(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path, "app", max_bytes=1 << 20)
    await spool.remember_schema_id("http://a", "s-value", "fp", 7)
    await spool.remember_schema_id("http://b", "s-value", "fp", 9)
    await spool.close()
    spool = await Spool.open(tmp_path, "app", max_bytes=1 << 20)
    try:
        assert await spool.schema_ids("http://a") == {("s-value", "fp"): 7}
        assert await spool.schema_ids("http://b") == {("s-value", "fp"): 9}
    finally:
        await spool.close()


def test_header_blobs_round_trip_and_reject_truncation() -> None:
    headers = [("ce_id", b"x"), ("empty", b""), ("bin", bytes(range(256))), ("ü", b"\xff")]
    blob = encode_headers(headers)
    assert decode_headers(blob) == headers
    assert decode_headers(b"") == []
    with pytest.raises(ValueError, match="truncated"):
        decode_headers(blob[:-1])

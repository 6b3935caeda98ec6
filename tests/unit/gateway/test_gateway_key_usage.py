"""Key usage is written in batches, and kept for the next round when the database is away."""

from __future__ import annotations

import datetime as dt

import pytest

from lintas.producers.gateway.auth import KeyUsageRecorder


class _Sink:
    def __init__(self) -> None:
        self.down = False
        self.touched: list[tuple[str, dt.datetime | None]] = []

    async def touch_key(self, key_id: str, at: dt.datetime | None = None) -> None:
        if self.down:
            raise OSError("connection refused")
        self.touched.append((key_id, at))


@pytest.mark.asyncio
async def test_uses_are_collapsed_per_key_and_kept_while_the_database_is_away() -> None:
    sink = _Sink()
    usage = KeyUsageRecorder(sink, interval=3600)
    for _ in range(100):
        usage.used("aaaaaaaaaaaa")
    usage.used("bbbbbbbbbbbb")
    sink.down = True
    await usage.flush()
    assert sink.touched == []
    sink.down = False
    await usage.flush()
    assert sorted(k for k, _ in sink.touched) == ["aaaaaaaaaaaa", "bbbbbbbbbbbb"]
    assert all(at is not None and at.tzinfo is not None for _, at in sink.touched)
    await usage.flush()
    assert len(sink.touched) == 2  # nothing new was used: nothing written again

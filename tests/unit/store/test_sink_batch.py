"""Batches of consumed records: offsets, revoked partitions, cuts at a schema change."""

from __future__ import annotations

from aiokafka import TopicPartition

from lintas.consumers.sinks import SinkBatch

A = TopicPartition("a", 0)
B = TopicPartition("b", 1)


def _batch() -> SinkBatch[str]:
    batch: SinkBatch[str] = SinkBatch()
    for offset in (10, 11, 13):  # 12 is a transaction marker: offsets have gaps
        batch.add(A, offset, f"a{offset}", now=1.0)
    batch.add(B, 5, None, now=2.0)  # skipped (dead-lettered): the offset still moves
    batch.add(B, 6, "b6", now=3.0)
    return batch


def test_offsets_move_past_every_consumed_record() -> None:
    batch = _batch()
    assert len(batch) == 5 and batch.started_at == 1.0
    assert batch.next_offsets == {A: 14, B: 7}
    assert list(batch.values()) == ["a10", "a11", "a13", "b6"]


def test_revoked_partitions_are_forgotten() -> None:
    batch = _batch()
    batch.drop([B])
    assert batch.next_offsets == {A: 14} and len(batch) == 3


def test_a_cut_keeps_what_came_before_and_resumes_at_the_cut() -> None:
    batch = _batch()
    batch.cut(A, 13)
    assert batch.next_offsets[A] == 13 and list(batch.values()) == ["a10", "a11", "b6"]
    batch.cut(A, 10)  # nothing before it: the partition is not written at all
    assert A not in batch.next_offsets and len(batch) == 2

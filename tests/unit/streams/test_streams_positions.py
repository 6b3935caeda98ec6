"""Source positions: records admitted strictly in offset order, holes read again, commits
that never pass a record still in flight."""

from __future__ import annotations

from lintas.streams.positions import Admission, SourcePositions

TP = ("opd.dukcapil.kematian_dicatat.v1", 0)


def _admit(positions: SourcePositions, offset: int, now: float = 0.0):
    return positions.admit(TP, offset, now)


def test_commit_position_stops_at_the_first_record_not_done() -> None:
    positions = SourcePositions()
    positions.start(TP, 10)
    done = {o: _admit(positions, o)[1] for o in range(10, 14)}
    assert positions.committable() == {}, "nothing finished yet: nothing to commit"
    done[12]()
    done[13]()
    assert positions.committable() == {}, "12 and 13 are done, but 10 is still in flight"
    done[10]()
    assert positions.committable() == {TP: 11}
    positions.committed({TP: 11})
    done[11]()
    assert positions.committable() == {TP: 14} and positions.pending() == 0


def test_a_hole_is_read_again_and_later_records_wait_for_it() -> None:
    positions = SourcePositions()
    positions.start(TP, 100)
    assert _admit(positions, 100)[0] is Admission.PROCESS
    admission, done = _admit(positions, 105, now=1.0)
    assert admission is Admission.SEEK and done is None
    assert positions.expected(TP) == 101
    # Records already fetched past the hole are ignored while the seek takes effect.
    assert _admit(positions, 106, now=2.0)[0] is Admission.SKIP
    assert _admit(positions, 101, now=2.5)[0] is Admission.PROCESS
    # A repeat read before is skipped; the commit never passes the hole.
    assert _admit(positions, 100, now=3.0)[0] is Admission.SKIP
    assert positions.committable() == {}


def test_a_seek_that_does_not_take_is_tried_again_then_the_hole_is_accepted() -> None:
    positions = SourcePositions()
    positions.start(TP, 0)
    assert _admit(positions, 7, now=0.0)[0] is Admission.SEEK
    assert _admit(positions, 7, now=10.0)[0] is Admission.SEEK, "patience over: seek again"
    assert _admit(positions, 7, now=20.0)[0] is Admission.SEEK
    admission, done = _admit(positions, 7, now=30.0)
    assert admission is Admission.PROCESS and done is not None
    done()
    assert positions.committable() == {TP: 8}


def test_records_deleted_by_retention_are_skipped_to() -> None:
    positions = SourcePositions()
    positions.start(TP, 0)
    _, first = _admit(positions, 0)
    positions.skip_to(TP, 50)
    assert positions.committable() == {}, "offset 0 is still in flight"
    first()
    assert positions.committable() == {TP: 50}
    assert _admit(positions, 50)[0] is Admission.PROCESS


def test_dropped_partitions_start_again() -> None:
    positions = SourcePositions()
    positions.start(TP, 0)
    _, done = _admit(positions, 0)
    positions.drop([TP])
    assert not positions.known(TP)
    done()  # a late finish of a revoked partition's record is harmless
    assert positions.committable() == {}


def test_a_partition_that_admits_nothing_is_reported_stalled_once_per_interval() -> None:
    positions = SourcePositions()
    positions.start(TP, 0, now=0.0)
    _admit(positions, 0, now=3.0)
    assert positions.stalled(now=6.0, after=5.0) == [], "it admitted a record 3 s ago"
    assert positions.stalled(now=8.0, after=5.0) == [TP]
    assert positions.stalled(now=9.0, after=5.0) == [], "reported again only after 5 s more"
    assert positions.stalled(now=13.0, after=5.0) == [TP]

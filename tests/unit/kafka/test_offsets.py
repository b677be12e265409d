from hypothesis import given
from hypothesis import strategies as st

from consumer.kafka.offsets import OffsetTracker, PartitionWork


def test_commit_waits_for_the_oldest_record() -> None:
    work = PartitionWork("t", 0)
    for offset in (10, 11, 12):
        work.register(offset)
    work.done(12)
    work.done(11)
    assert work.to_commit() is None
    work.done(10)
    assert work.to_commit() == 13
    assert work.buffered == 0


def test_gaps_in_offsets_follow_registration_order() -> None:
    work = PartitionWork("t", 0)
    for offset in (5, 9, 20):
        work.register(offset)
    work.done(5)
    work.done(9)
    assert work.to_commit() == 10
    work.committed = 10
    assert work.to_commit() is None


@given(st.permutations(list(range(30))), st.integers(min_value=0, max_value=30))
def test_committable_is_the_done_prefix(order: list[int], completed: int) -> None:
    work = PartitionWork("t", 1)
    for offset in range(30):
        work.register(offset)
    finished = set(order[:completed])
    for offset in order[:completed]:
        work.done(offset)
    prefix = 0
    while prefix in finished:
        prefix += 1
    assert work.to_commit() == (prefix if prefix else None)
    assert work.buffered == 30 - prefix


def test_reassignment_gets_a_fresh_work_object() -> None:
    tracker = OffsetTracker()
    old = tracker.assign("t", 0)
    old.register(1)
    assert tracker.revoke("t", 0) is old
    assert old.revoked
    new = tracker.assign("t", 0)
    old.done(1)
    assert new.to_commit() is None
    assert tracker.all() == [new]

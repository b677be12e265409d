"""Commits: only new done prefixes, recorded only once the broker accepted them, paced."""

from __future__ import annotations

from consumer.kafka.commits import Committer
from consumer.kafka.offsets import PartitionWork
from consumer.ops import metrics
from tests.unit.kafka.fakes import FakeClock, FakeConsumer


def _work(partition: int, done: int, registered: int) -> PartitionWork:
    work = PartitionWork("t", partition)
    work.start_at(0, commit=False)
    for offset in range(registered):
        work.register(offset)
    for offset in range(done):
        work.done(offset)
    return work


def test_only_partitions_with_newly_done_records_are_committed() -> None:
    consumer = FakeConsumer()
    moved, idle = _work(0, done=3, registered=5), _work(1, done=0, registered=2)
    Committer(1.0).commit(consumer, [moved, idle])  # type: ignore[arg-type]
    assert consumer.commits == [[(0, 3)]]
    assert moved.committed == 3 and idle.committed == 0

    Committer(1.0).commit(consumer, [moved, idle])  # type: ignore[arg-type]
    assert consumer.commits == [[(0, 3)]], "nothing new: no request"


def test_a_failed_commit_is_not_recorded_and_is_tried_again() -> None:
    consumer = FakeConsumer()
    work = _work(0, done=2, registered=2)
    consumer.commit_fails = True
    committer = Committer(1.0)
    committer.commit(consumer, [work])  # type: ignore[arg-type]
    assert work.committed == 0 and work.to_commit() == 2

    consumer.commit_fails = False
    committer.commit(consumer, [work])  # type: ignore[arg-type]
    assert consumer.commits == [[(0, 2)]] and work.committed == 2


def test_the_periodic_commit_waits_for_its_interval() -> None:
    clock, consumer = FakeClock(), FakeConsumer()
    committer = Committer(1.0, clock=clock)
    work = _work(0, done=1, registered=3)
    committer.commit_if_due(consumer, [work])  # type: ignore[arg-type]
    assert consumer.commits == []
    clock.now += 1.0
    committer.commit_if_due(consumer, [work])  # type: ignore[arg-type]
    assert consumer.commits == [[(0, 1)]]
    work.done(1)
    clock.now += 0.5
    committer.commit_if_due(consumer, [work])  # type: ignore[arg-type]
    assert consumer.commits == [[(0, 1)]]


def _committed_series(topic: str) -> set[str]:
    return {
        sample.labels["partition"]
        for family in metrics.COMMITTED_OFFSET.collect()
        for sample in family.samples
        if sample.labels.get("topic") == topic
    }


def test_the_commit_on_revoke_does_not_bring_back_a_removed_series() -> None:
    consumer = FakeConsumer()
    kept, revoked = PartitionWork("revoke-t", 0), PartitionWork("revoke-t", 1)
    for work in (kept, revoked):
        work.start_at(0, commit=False)
        work.register(0)
        work.done(0)
    revoked.revoked = True  # released: its series was removed before this last commit
    Committer(1.0).commit(consumer, [kept, revoked])  # type: ignore[arg-type]
    assert consumer.commits == [[(0, 1), (1, 1)]], "the revoked partition's offset is committed"
    assert _committed_series("revoke-t") == {"0"}

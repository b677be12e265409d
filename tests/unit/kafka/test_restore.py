"""Restore threads retry with the plain doubling until revoked; positioning seeks where a
partition starts and retries on the next turn when the broker cannot say yet."""

from __future__ import annotations

import queue
from typing import Any

import pytest
from confluent_kafka import KafkaError

from consumer.errors import RestoreCancelled
from consumer.kafka.offsets import OffsetTracker, PartitionWork
from consumer.kafka.restore import RESTORE_BACKOFF, Positioner, Restorer
from consumer.signals import Signals
from tests.unit.kafka.fakes import FakeConsumer, FakeHandoff


class FlakyChangelog:
    def __init__(self, failures: int, *, then: Any = "states") -> None:
        self.failures, self.then, self.calls = failures, then, 0

    def restore(self, partition: int, *, cancelled: Any = None) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise OSError("broker gone")
        if isinstance(self.then, Exception):
            raise self.then
        return self.then


def test_the_restore_backoff_keeps_its_values() -> None:
    assert [RESTORE_BACKOFF.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_failing_restore_is_retried_with_backoff_then_attached() -> None:
    slept: list[float] = []
    handoff = FakeHandoff()
    restorer = Restorer(FlakyChangelog(3), handoff, sleep=slept.append)  # type: ignore[arg-type]
    work = PartitionWork("t", 4)
    try:
        restorer.restore(work)
    finally:
        restorer.shutdown()
    assert slept == [1.0, 2.0, 4.0]
    assert handoff.sent == [("attach", 4)] and restorer.restored.get_nowait() is work


def test_a_revoked_partition_stops_retrying_and_attaches_nothing() -> None:
    work = PartitionWork("t", 0)

    def revoke(_delay: float) -> None:
        work.revoked = True

    handoff = FakeHandoff()
    restorer = Restorer(FlakyChangelog(10), handoff, sleep=revoke)  # type: ignore[arg-type]
    restorer.restore(work)
    restorer.shutdown()
    assert handoff.sent == [] and restorer.restored.empty()


def test_a_cancelled_restore_ends_quietly() -> None:
    handoff = FakeHandoff()
    changelog = FlakyChangelog(0, then=RestoreCancelled())
    restorer = Restorer(changelog, handoff, sleep=pytest.fail)  # type: ignore[arg-type]
    restorer.restore(PartitionWork("t", 0))
    restorer.shutdown()
    assert handoff.sent == [] and changelog.calls == 1


def _positioner(start_at_end: bool = False) -> tuple[Positioner, OffsetTracker, Signals, Any]:
    tracker, signals = OffsetTracker(), Signals()
    restored: queue.SimpleQueue[PartitionWork] = queue.SimpleQueue()
    return (
        Positioner(tracker, restored, signals, start_at_end=start_at_end),
        tracker,
        signals,
        restored,
    )


def test_a_committed_offset_is_where_the_partition_starts() -> None:
    positioner, tracker, signals, restored = _positioner()
    work = tracker.assign("t", 0)
    signals.restore_started(work)
    consumer = FakeConsumer()
    consumer.committed_at[0] = 17
    restored.put(work)
    positioner.start_restored(consumer)  # type: ignore[arg-type]
    assert consumer.calls == [("seek", (0, 17))]
    assert work.next_offset == 17 and work.committed == 17 and work.to_commit() is None
    assert signals.restoring == 0


@pytest.mark.parametrize(("start_at_end", "start"), [(False, 3), (True, 9)])
def test_without_a_committed_offset_the_reset_policy_decides_and_it_is_committed(
    start_at_end: bool, start: int
) -> None:
    positioner, tracker, _, restored = _positioner(start_at_end)
    work = tracker.assign("t", 0)
    consumer = FakeConsumer()
    consumer.lows[0], consumer.ends[0] = 3, 9
    restored.put(work)
    positioner.start_restored(consumer)  # type: ignore[arg-type]
    assert consumer.calls == [("seek", (0, start))] and work.to_commit() == start


def test_a_coordinator_that_cannot_answer_yet_is_asked_again_next_turn() -> None:
    positioner, tracker, signals, restored = _positioner()
    work = tracker.assign("t", 0)
    signals.restore_started(work)
    consumer = FakeConsumer()
    consumer.committed_error = KafkaError(KafkaError.COORDINATOR_LOAD_IN_PROGRESS)
    restored.put(work)
    positioner.start_restored(consumer)  # type: ignore[arg-type]
    assert consumer.calls == [] and work.next_offset is None and signals.restoring == 1

    consumer.committed_error = None
    consumer.committed_at[0] = 5
    positioner.start_restored(consumer)  # type: ignore[arg-type]
    assert consumer.calls == [("seek", (0, 5))] and signals.restoring == 0

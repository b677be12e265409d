"""Rebalance callbacks: assigned paused and restoring; revoked drained, committed, then
detached; lost drained and detached without a commit."""

from __future__ import annotations

from typing import Any

from confluent_kafka import TopicPartition

from consumer.kafka.assignment import Assignments
from consumer.kafka.backpressure import Flow
from consumer.kafka.caught_up import CaughtUp
from consumer.kafka.commits import Committer
from consumer.kafka.offsets import OffsetTracker, PartitionWork
from consumer.signals import Signals
from tests.unit.kafka.fakes import FakeConsumer, FakeHandoff


class Submitted:
    def __init__(self) -> None:
        self.works: list[PartitionWork] = []

    def submit(self, work: PartitionWork) -> None:
        self.works.append(work)


class RecordingCommitter(Committer):
    def __init__(self, handoff: FakeHandoff) -> None:
        super().__init__(1.0)
        self._log = handoff

    def commit(self, consumer: Any, works: list[PartitionWork]) -> None:
        self._log.sent.append(("commit", [w.partition for w in works]))
        super().commit(consumer, works)


def _assignments() -> tuple[Assignments, OffsetTracker, Flow, Signals, FakeHandoff, Submitted]:
    tracker, flow, signals, handoff, submitted = (
        OffsetTracker(),
        Flow(10),
        Signals(),
        FakeHandoff(),
        Submitted(),
    )
    assignments = Assignments(
        tracker=tracker,
        flow=flow,
        caught_up=CaughtUp(flow, handoff),  # type: ignore[arg-type]
        restorer=submitted,  # type: ignore[arg-type]
        committer=RecordingCommitter(handoff),
        handoff=handoff,  # type: ignore[arg-type]
        signals=signals,
        revoke_timeout=15.0,
    )
    return assignments, tracker, flow, signals, handoff, submitted


def test_assigned_partitions_start_paused_and_restoring() -> None:
    assignments, tracker, flow, signals, _, submitted = _assignments()
    consumer = FakeConsumer()
    assignments.on_assign(consumer, [TopicPartition("t", 0), TopicPartition("t", 1)])  # type: ignore[arg-type]
    assert consumer.calls == [("assign", [0, 1]), ("pause", [0, 1])]
    works = tracker.all()
    assert submitted.works == works and all(flow.is_paused(w) for w in works)
    assert signals.restoring == 2 and signals.joined


def test_an_empty_assignment_joins_without_pausing() -> None:
    assignments, _, _, signals, _, _ = _assignments()
    consumer = FakeConsumer()
    assignments.on_assign(consumer, [])  # type: ignore[arg-type]
    assert consumer.calls == [("assign", [])] and signals.joined


def test_a_revoked_partition_is_drained_then_committed_then_detached() -> None:
    assignments, tracker, flow, signals, handoff, _ = _assignments()
    consumer = FakeConsumer()
    assignments.on_assign(consumer, [TopicPartition("t", 0)])  # type: ignore[arg-type]
    work = tracker.get("t", 0)
    assert work is not None
    work.start_at(0, commit=False)
    work.register(0)
    work.done(0)

    assignments.on_revoke(consumer, [TopicPartition("t", 0)])  # type: ignore[arg-type]

    assert handoff.sent == [("drain", ([0], False)), ("commit", [0]), ("detach", [0])]
    assert consumer.commits == [[(0, 1)]]
    assert work.revoked and tracker.get("t", 0) is None and not flow.is_paused(work)
    assert signals.restoring == 0


def test_a_lost_partition_commits_nothing() -> None:
    assignments, tracker, _, _, handoff, _ = _assignments()
    consumer = FakeConsumer()
    assignments.on_assign(consumer, [TopicPartition("t", 0)])  # type: ignore[arg-type]
    work = tracker.get("t", 0)
    assert work is not None
    work.start_at(0, commit=False)
    work.register(0)
    work.done(0)

    assignments.on_lost(consumer, [TopicPartition("t", 0)])  # type: ignore[arg-type]

    assert handoff.sent == [("drain", ([0], False)), ("detach", [0])]
    assert consumer.commits == [] and work.revoked

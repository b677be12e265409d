"""``KafkaSource``'s composed parts against a fake librdkafka consumer: readiness while partitions
restore, per-partition metric series on revoke, caught-up detection, and whole loop turns."""

from __future__ import annotations

import asyncio
from typing import Any

from confluent_kafka import TopicPartition

from consumer.kafka.source import KafkaSource, SourceSettings
from consumer.ops import metrics
from consumer.ops.health import Health
from consumer.signals import Signals
from tests.unit.kafka.fakes import FakeConsumer, FakeHandoff, FakeMessage

SETTINGS = SourceSettings(
    topic="t",
    max_buffered_per_partition=10,
    commit_interval_seconds=0.0,
    revoke_timeout_seconds=1.0,
    shutdown_grace_seconds=1.0,
)


class NoChangelog:
    """Never read: the test hands restored partitions over itself."""

    def restore(self, partition: int, **kwargs: Any) -> None:
        raise AssertionError("restores are handed over by the test")


class _NoPipeline:
    """Only named: the Kafka thread reaches the pipeline through the (fake) hand-off."""


class _NoRestoreThreads:
    def submit(self, work: Any) -> None:
        """Restores are handed over by the test."""

    def shutdown(self) -> None:
        """Nothing runs."""


def _source(config: dict[str, Any] | None = None) -> tuple[KafkaSource, Signals, FakeHandoff]:
    signals = Signals()
    source = KafkaSource(
        SETTINGS,
        config or {},
        pipeline=_NoPipeline(),  # type: ignore[arg-type]
        loop=asyncio.new_event_loop(),
        signals=signals,
        changelog=NoChangelog(),  # type: ignore[arg-type]
    )
    source.restorer.shutdown()  # the test plays the restore threads' part
    restored = source.restorer.restored
    source.restorer = source.assignments._restorer = _NoRestoreThreads()  # type: ignore[assignment]
    source.restorer.restored = restored  # type: ignore[attr-defined]
    handoff = FakeHandoff()
    source.handoff = handoff  # type: ignore[assignment]
    for part in (source.assignments, source.caught_up, source.fetcher):
        part._handoff = handoff  # type: ignore[attr-defined,assignment]
    return source, signals, handoff


def test_a_stale_restore_finishing_late_does_not_make_a_restoring_partition_ready() -> None:
    source, signals, _ = _source()
    health = Health(signals)
    consumer = FakeConsumer()
    consumer.committed_at[0] = 5
    source.assignments.on_assign(consumer, [TopicPartition("t", 0)])  # type: ignore[arg-type]
    stale = source.tracker.get("t", 0)
    source.assignments.release([TopicPartition("t", 0)])
    source.assignments.on_assign(consumer, [TopicPartition("t", 0)])  # assigned again
    current = source.tracker.get("t", 0)
    assert stale is not None and current is not None and stale is not current

    source.restorer.restored.put(stale)  # the first assignment's restore finishes now
    source.positioner.start_restored(consumer)  # type: ignore[arg-type]
    assert health.ready() == (False, "restoring state of 1 partition(s)")
    assert ("seek", (0, 5)) not in consumer.calls

    source.restorer.restored.put(current)
    source.positioner.start_restored(consumer)  # type: ignore[arg-type]
    assert health.ready() == (True, "ok")
    assert [call for call in consumer.calls if call[0] == "seek"] == [("seek", (0, 5))]


def test_revoking_a_partition_removes_its_metric_series() -> None:
    source, _, _ = _source()
    source.assignments.on_assign(FakeConsumer(), [TopicPartition("t", 3)])  # type: ignore[arg-type]
    metrics.COMMITTED_OFFSET.labels("t", "3").set(42)
    metrics.CONSUMER_LAG.labels("t", "3").set(7)

    source.assignments.release([TopicPartition("t", 3)])

    exported = {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in (metrics.COMMITTED_OFFSET, metrics.CONSUMER_LAG)
        for sample in family.collect()[0].samples
    }
    assert not [labels for _, labels in exported if ("partition", "3") in labels]


def _restored_source(consumer: FakeConsumer) -> tuple[KafkaSource, FakeHandoff]:
    source, _, handoff = _source()
    source.assignments.on_assign(consumer, [TopicPartition("t", 0)])  # type: ignore[arg-type]
    work = source.tracker.get("t", 0)
    assert work is not None
    work.start_at(10, commit=False)
    source.flow.forget("t", 0)
    return source, handoff


def test_an_idle_partition_positioned_by_a_seek_is_caught_up() -> None:
    """librdkafka reports no position (-1001) until a record is consumed after a seek; an idle
    partition sought to its end must still count as caught up, or its timers never fire."""
    consumer = FakeConsumer()
    source, handoff = _restored_source(consumer)
    source.caught_up.update(consumer, source.tracker.all())  # type: ignore[arg-type]
    assert handoff.verdicts == [True]


def test_catching_up_without_a_record_is_confirmed_with_the_broker() -> None:
    """A cached watermark from before a pause says "at the end"; the broker says newer records
    arrived meanwhile: not caught up (their shipments' timers must wait)."""
    consumer = FakeConsumer()
    consumer.positions[0], consumer.live_ends[0] = 10, 14
    source, handoff = _restored_source(consumer)
    source.caught_up.update(consumer, source.tracker.all())  # type: ignore[arg-type]
    assert handoff.verdicts == [False] and consumer.live_asks == 1


def test_a_paused_partition_is_never_caught_up() -> None:
    consumer = FakeConsumer()
    consumer.positions[0] = 10
    source, handoff = _restored_source(consumer)
    source.flow.hold(consumer, [TopicPartition("t", 0)])  # type: ignore[arg-type]
    source.caught_up.update(consumer, source.tracker.all())  # type: ignore[arg-type]
    assert handoff.verdicts == [False] and consumer.live_asks == 0


def test_the_broker_is_asked_at_most_once_a_second_per_partition() -> None:
    """While the cached watermark says "at the end" and the broker says otherwise (the records
    are not fetched yet), each loop turn must not block on another request."""
    consumer = FakeConsumer()
    consumer.positions[0], consumer.live_ends[0] = 10, 14
    source, handoff = _restored_source(consumer)
    for _ in range(5):
        source.caught_up.update(consumer, source.tracker.all())  # type: ignore[arg-type]
    assert consumer.live_asks == 1 and handoff.verdicts == [False]


def test_a_turn_positions_a_restored_partition_resumes_it_and_hands_its_records_over() -> None:
    """Records fetched before the restore are dropped; after positioning they flow, are
    registered, carry the caught-up verdict on the last one, and get committed once done."""
    source, signals, handoff = _source()
    consumer = FakeConsumer()
    consumer.committed_at[0], consumer.ends[0] = 3, 5
    source.assignments.on_assign(consumer, [TopicPartition("t", 0)])  # type: ignore[arg-type]
    assert signals.joined and signals.restoring == 1
    work = source.tracker.get("t", 0)
    assert work is not None

    consumer.fetches = [[FakeMessage(0, 3)]]  # fetched between assignment and pause
    source.turn(consumer)  # type: ignore[arg-type]
    assert [kind for kind, _ in handoff.sent] == [] and work.buffered == 0

    source.restorer.restored.put(work)
    source.turn(consumer)  # type: ignore[arg-type]
    assert ("seek", (0, 3)) in consumer.calls and ("resume", [0]) in consumer.calls
    assert signals.restoring == 0

    consumer.fetches = [[FakeMessage(0, 3), FakeMessage(0, 4)]]
    consumer.positions[0] = 5
    source.turn(consumer)  # type: ignore[arg-type]
    [(_, batch)] = [sent for sent in handoff.sent if sent[0] == "accept"]
    assert [(r.offset, r.at_end) for r in batch] == [(3, False), (4, True)]
    assert work.buffered == 2 and consumer.commits == []

    work.done(4)
    work.done(3)
    source.turn(consumer)  # type: ignore[arg-type]
    assert consumer.commits == [[(0, 5)]] and work.committed == 5


def test_an_open_circuit_pauses_partitions_that_hold_records() -> None:
    source, signals, _ = _source()
    consumer = FakeConsumer()
    source.assignments.on_assign(consumer, [TopicPartition("t", 0)])  # type: ignore[arg-type]
    work = source.tracker.get("t", 0)
    assert work is not None
    source.restorer.restored.put(work)
    source.turn(consumer)  # type: ignore[arg-type]
    consumer.fetches = [[FakeMessage(0, 0)]]
    signals.circuit_open = True
    source.turn(consumer)  # type: ignore[arg-type]
    assert consumer.calls[-1] == ("pause", [0]) and source.flow.is_paused(work)


def test_a_new_group_starts_at_the_end_with_latest_and_commits_there() -> None:
    source, _, _ = _source({"auto.offset.reset": "latest"})
    consumer = FakeConsumer()
    consumer.ends[0] = 42
    source.assignments.on_assign(consumer, [TopicPartition("t", 0)])  # type: ignore[arg-type]
    work = source.tracker.get("t", 0)
    assert work is not None
    source.restorer.restored.put(work)
    source.turn(consumer)  # type: ignore[arg-type]
    assert ("seek", (0, 42)) in consumer.calls
    assert consumer.commits == [[(0, 42)]]

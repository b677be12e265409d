"""``KafkaSource``'s bookkeeping against a fake librdkafka consumer: readiness while partitions
restore, and per-partition metric series on revoke."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from confluent_kafka import TopicPartition

from consumer.kafka.source import KafkaSource, SourceSettings
from consumer.ops import metrics
from consumer.ops.health import Health

SETTINGS = SourceSettings(
    topic="t",
    max_buffered_per_partition=10,
    commit_interval_seconds=1.0,
    revoke_timeout_seconds=1.0,
    shutdown_grace_seconds=1.0,
)


class FakeConsumer:
    """The calls ``KafkaSource`` makes outside ``run``: assignment, pause, positioning."""

    def __init__(self) -> None:
        self.seeks: list[tuple[int, int]] = []

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        """Accepted."""

    def pause(self, partitions: list[TopicPartition]) -> None:
        """Accepted."""

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, 5) for tp in partitions]

    def get_watermark_offsets(self, tp: TopicPartition, **kwargs: Any) -> tuple[int, int]:
        return 0, 10

    def seek(self, tp: TopicPartition) -> None:
        self.seeks.append((tp.partition, tp.offset))


class NoChangelog:
    """Never read: the test hands restored partitions over itself."""

    def restore(self, partition: int, **kwargs: Any) -> None:
        raise AssertionError("restores are handed over by the test")


class _NoPipeline:
    """Only named: the Kafka thread hands it callbacks through the (fake) loop."""

    def set_caught_up(self, work: object, caught_up: bool) -> None:
        raise AssertionError("called through the loop only")


def _source() -> tuple[KafkaSource, Health]:
    health = Health(auth_blocked=lambda: False)
    source = KafkaSource(
        SETTINGS,
        {},
        pipeline=_NoPipeline(),  # type: ignore[arg-type]
        loop=asyncio.new_event_loop(),
        health=health,
        circuit_open=threading.Event(),
        changelog=NoChangelog(),  # type: ignore[arg-type]
    )
    source._restorer.shutdown(wait=False)  # the test plays the restore threads' part
    source._restorer = _NoRestoreThreads()  # type: ignore[assignment]
    return source, health


class _NoRestoreThreads:
    def submit(self, fn: Any, *args: Any) -> None:
        """Restores are handed over by the test."""


def test_a_stale_restore_finishing_late_does_not_make_a_restoring_partition_ready() -> None:
    source, health = _source()
    consumer = FakeConsumer()
    health.joined = True
    source._on_assign(consumer, [TopicPartition("t", 0)])  # type: ignore[arg-type]
    stale = source._tracker.get("t", 0)
    source._release([TopicPartition("t", 0)])
    source._on_assign(consumer, [TopicPartition("t", 0)])  # assigned again, restoring again
    current = source._tracker.get("t", 0)
    assert stale is not None and current is not None and stale is not current

    source._restored.put(stale)  # the first assignment's restore finishes now
    source._start_restored(consumer)  # type: ignore[arg-type]
    assert health.ready() == (False, "restoring state of 1 partition(s)")
    assert consumer.seeks == []

    source._restored.put(current)
    source._start_restored(consumer)  # type: ignore[arg-type]
    assert health.ready() == (True, "ok")
    assert consumer.seeks == [(0, 5)]


def test_revoking_a_partition_removes_its_metric_series() -> None:
    source, _ = _source()
    source._on_assign(FakeConsumer(), [TopicPartition("t", 3)])  # type: ignore[arg-type]
    metrics.COMMITTED_OFFSET.labels("t", "3").set(42)
    metrics.CONSUMER_LAG.labels("t", "3").set(7)

    source._release([TopicPartition("t", 3)])

    exported = {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in (metrics.COMMITTED_OFFSET, metrics.CONSUMER_LAG)
        for sample in family.collect()[0].samples
    }
    assert not [labels for _, labels in exported if ("partition", "3") in labels]


class PositionedConsumer(FakeConsumer):
    """Positions and watermarks as librdkafka reports them."""

    def __init__(self, position: int, cached_end: int, live_end: int) -> None:
        super().__init__()
        self.position_offset, self.cached_end, self.live_end = position, cached_end, live_end
        self.live_asks = 0

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self.position_offset) for tp in partitions]

    def get_watermark_offsets(self, tp: TopicPartition, **kwargs: Any) -> tuple[int, int]:
        if kwargs.get("cached"):
            return 0, self.cached_end
        self.live_asks += 1
        return 0, self.live_end


class _Told:
    """Records what the Kafka thread tells the loop."""

    def __init__(self) -> None:
        self.told: list[bool] = []

    def call_soon_threadsafe(self, _callback: Any, _work: Any, caught_up: bool) -> None:
        self.told.append(caught_up)


def _restored_source(consumer: FakeConsumer) -> tuple[KafkaSource, _Told]:
    source, _ = _source()
    told = _Told()
    source._loop = told  # type: ignore[assignment]
    source._on_assign(consumer, [TopicPartition("t", 0)])  # type: ignore[arg-type]
    work = source._tracker.get("t", 0)
    assert work is not None
    work.start_at(10, commit=False)
    source._paused.discard(("t", 0))
    return source, told


def test_an_idle_partition_positioned_by_a_seek_is_caught_up() -> None:
    """librdkafka reports no position (-1001) until a record is consumed after a seek; an idle
    partition sought to its end must still count as caught up, or its timers never fire."""
    consumer = PositionedConsumer(position=-1001, cached_end=10, live_end=10)
    source, told = _restored_source(consumer)
    source._update_caught_up(consumer)  # type: ignore[arg-type]
    assert told.told == [True]


def test_catching_up_without_a_record_is_confirmed_with_the_broker() -> None:
    """A cached watermark from before a pause says "at the end"; the broker says newer records
    arrived meanwhile: not caught up (their shipments' timers must wait)."""
    consumer = PositionedConsumer(position=10, cached_end=10, live_end=14)
    source, told = _restored_source(consumer)
    source._update_caught_up(consumer)  # type: ignore[arg-type]
    assert told.told == [False] and consumer.live_asks == 1


def test_a_paused_partition_is_never_caught_up() -> None:
    consumer = PositionedConsumer(position=10, cached_end=10, live_end=10)
    source, told = _restored_source(consumer)
    source._paused.add(("t", 0))
    source._update_caught_up(consumer)  # type: ignore[arg-type]
    assert told.told == [False] and consumer.live_asks == 0


def test_the_broker_is_asked_at_most_once_a_second_per_partition() -> None:
    """While the cached watermark says "at the end" and the broker says otherwise (the records
    are not fetched yet), each loop turn must not block on another request."""
    consumer = PositionedConsumer(position=10, cached_end=10, live_end=14)
    source, told = _restored_source(consumer)
    for _ in range(5):
        source._update_caught_up(consumer)  # type: ignore[arg-type]
    assert consumer.live_asks == 1 and told.told == [False]

"""Fetching without waiting for a full batch, and the hand-over's bookkeeping."""

from __future__ import annotations

from confluent_kafka import KafkaError

from consumer.kafka.backpressure import Flow
from consumer.kafka.caught_up import CaughtUp
from consumer.kafka.fetch import FETCH_BATCH, POLL_TIMEOUT_SECONDS, Fetcher, fetch
from consumer.kafka.offsets import OffsetTracker
from tests.unit.kafka.fakes import FakeConsumer, FakeHandoff, FakeMessage


def test_a_busy_stream_is_fetched_without_waiting() -> None:
    consumer = FakeConsumer()
    consumer.fetches = [[FakeMessage(0, n) for n in range(3)]]
    assert len(fetch(consumer)) == 3  # type: ignore[arg-type]
    assert consumer.consume_calls == [(FETCH_BATCH, 0)]


def test_an_empty_fetch_waits_for_one_record_then_takes_what_else_is_there() -> None:
    consumer = FakeConsumer()
    # nothing at first; then one record, after which two more are already there
    consumer.fetches = [[], [FakeMessage(0, 0)], [FakeMessage(0, 1), FakeMessage(0, 2)]]

    messages = fetch(consumer)  # type: ignore[arg-type]

    assert [m.offset() for m in messages] == [0, 1, 2]
    assert consumer.consume_calls == [
        (FETCH_BATCH, 0),
        (1, POLL_TIMEOUT_SECONDS),
        (FETCH_BATCH - 1, 0),
    ]


def test_a_quiet_stream_waits_once_and_returns_nothing() -> None:
    consumer = FakeConsumer()
    assert fetch(consumer) == []  # type: ignore[arg-type]
    assert consumer.consume_calls == [(FETCH_BATCH, 0), (1, POLL_TIMEOUT_SECONDS)]


def _fetcher() -> tuple[Fetcher, OffsetTracker, Flow, FakeHandoff]:
    tracker, flow, handoff = OffsetTracker(), Flow(10), FakeHandoff()
    caught_up = CaughtUp(flow, handoff)  # type: ignore[arg-type]
    return Fetcher("t", tracker, caught_up, handoff), tracker, flow, handoff  # type: ignore[arg-type]


def test_records_of_unpositioned_or_foreign_partitions_are_dropped_and_not_registered() -> None:
    fetcher, tracker, _, handoff = _fetcher()
    restoring = tracker.assign("t", 0)
    positioned = tracker.assign("t", 1)
    positioned.start_at(7, commit=False)
    consumer = FakeConsumer()
    consumer.ends[1] = 100  # far from the end

    fetcher.hand_over(
        consumer,  # type: ignore[arg-type]
        [FakeMessage(0, 3), FakeMessage(1, 7), FakeMessage(2, 0), FakeMessage(1, 8)],  # type: ignore[list-item]
    )

    [(_, batch)] = handoff.sent
    assert [(r.partition, r.offset, r.at_end) for r in batch] == [(1, 7, False), (1, 8, False)]
    assert restoring.buffered == 0 and positioned.buffered == 2 and positioned.next_offset == 9
    assert batch[0].work is positioned


def test_only_the_last_record_of_a_caught_up_partition_says_so() -> None:
    fetcher, tracker, _, handoff = _fetcher()
    tracker.assign("t", 0).start_at(0, commit=False)
    tracker.assign("t", 1).start_at(0, commit=False)
    consumer = FakeConsumer()
    consumer.ends.update({0: 2, 1: 50})
    consumer.positions.update({0: 2, 1: 2})

    fetcher.hand_over(
        consumer,  # type: ignore[arg-type]
        [FakeMessage(0, 0), FakeMessage(1, 0), FakeMessage(0, 1), FakeMessage(1, 1)],  # type: ignore[list-item]
    )

    [(_, batch)] = handoff.sent
    assert [(r.partition, r.offset, r.at_end) for r in batch] == [
        (0, 0, False),
        (1, 0, False),
        (0, 1, True),
        (1, 1, False),
    ]


def test_fetch_errors_are_skipped_and_an_empty_batch_is_not_sent() -> None:
    fetcher, tracker, _, handoff = _fetcher()
    tracker.assign("t", 0).start_at(0, commit=False)
    error = FakeMessage(0, -1, error=KafkaError(KafkaError._TRANSPORT))
    fetcher.hand_over(FakeConsumer(), [error])  # type: ignore[arg-type,list-item]
    assert handoff.sent == []

"""Reading a partition to its end (the changelog restore's Kafka side) with a fake consumer."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

from consumer.errors import RestoreCancelled
from consumer.kafka import reader
from tests.unit.kafka.fakes import FakeMessage


class ReadingConsumer:
    """A partition [low, high) served in batches; the position follows what was consumed."""

    instances: ClassVar[list[ReadingConsumer]] = []

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.low, self.high = 0, 0
        self.messages: list[FakeMessage] = []
        self.assigned: list[TopicPartition] = []
        self.at = 0
        self.closed = False
        ReadingConsumer.instances.append(self)

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        return self.low, self.high

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = partitions

    def assignment(self) -> list[TopicPartition]:
        return self.assigned

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self.at) for tp in partitions]

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        batch, self.messages = self.messages[:2], self.messages[2:]
        self.at = batch[-1].offset() + 1 if batch else self.at
        return batch

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def prepared(monkeypatch: pytest.MonkeyPatch) -> list[ReadingConsumer]:
    ReadingConsumer.instances = []
    monkeypatch.setattr(reader, "Consumer", ReadingConsumer)
    return ReadingConsumer.instances


def _with(consumer: ReadingConsumer, high: int, messages: list[FakeMessage]) -> None:
    consumer.high, consumer.messages = high, messages


def test_an_empty_partition_is_not_read(prepared: list[ReadingConsumer]) -> None:
    applied: list[Any] = []
    assert not reader.read_to_end({}, "s", 0, lambda k, m: applied.append(k), lambda: False)
    assert applied == [] and prepared[0].closed and prepared[0].assigned == []


def test_keyed_readable_records_are_applied_in_order_to_the_end(
    monkeypatch: pytest.MonkeyPatch, prepared: list[ReadingConsumer]
) -> None:
    messages = [
        FakeMessage(0, 0, key=b"a"),
        FakeMessage(0, 1, key=None),
        FakeMessage(0, 2, key=b"b", error=KafkaError(KafkaError._MSG_TIMED_OUT)),
        FakeMessage(0, 4, key=b"\xffc"),  # a gap left by compaction
    ]
    original = ReadingConsumer.__init__

    def init(self: ReadingConsumer, config: dict[str, Any]) -> None:
        original(self, config)
        _with(self, 5, list(messages))

    monkeypatch.setattr(ReadingConsumer, "__init__", init)
    applied: list[tuple[str, int]] = []
    assert reader.read_to_end(
        {"group.id": "g"}, "s", 3, lambda k, m: applied.append((k, m.offset())), lambda: False
    )
    consumer = prepared[0]
    assert applied == [("a", 0), ("\ufffdc", 4)]
    assert [(tp.partition, tp.offset) for tp in consumer.assigned] == [(3, OFFSET_BEGINNING)]
    assert consumer.closed and consumer.config == {"group.id": "g"}


def test_a_revoked_partition_cancels_its_restore(
    monkeypatch: pytest.MonkeyPatch, prepared: list[ReadingConsumer]
) -> None:
    original = ReadingConsumer.__init__

    def init(self: ReadingConsumer, config: dict[str, Any]) -> None:
        original(self, config)
        _with(self, 10, [FakeMessage(0, n) for n in range(10)])

    monkeypatch.setattr(ReadingConsumer, "__init__", init)
    batches = iter([False, True])
    with pytest.raises(RestoreCancelled):
        reader.read_to_end({}, "s", 0, lambda k, m: None, lambda: next(batches))
    assert prepared[0].closed

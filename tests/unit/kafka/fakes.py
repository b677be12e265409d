"""A fake librdkafka ``Consumer`` (no broker) and fake loop-side parts for the Kafka thread."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from consumer.kafka.offsets import PartitionWork


class FakeMessage:
    def __init__(
        self,
        partition: int,
        offset: int,
        *,
        topic: str = "t",
        key: bytes | None = b"k",
        value: bytes | None = b"v",
        error: KafkaError | None = None,
    ) -> None:
        self._topic, self._partition, self._offset = topic, partition, offset
        self._key, self._value, self._error = key, value, error

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes]] | None:
        return [("h", b"1")]

    def error(self) -> KafkaError | None:
        return self._error


class FakeConsumer:
    """Records what the Kafka thread asks; answers from per-partition tables.

    ``committed_at``: the group's committed offset per partition (-1001: none);
    ``ends``/``live_ends``: the cached and the broker's high watermark; ``positions``: what
    ``position()`` reports (default -1001, as librdkafka does right after a seek)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.committed_at: dict[int, int] = {}
        self.committed_error: KafkaError | None = None
        self.ends: dict[int, int] = {}
        self.live_ends: dict[int, int] = {}
        self.lows: dict[int, int] = {}
        self.positions: dict[int, int] = {}
        self.fetches: list[list[FakeMessage]] = []
        self.consume_calls: list[tuple[int, float]] = []
        self.commit_fails = False
        self.commits: list[list[tuple[int, int]]] = []
        self.live_asks = 0

    def _log(self, name: str, partitions: Sequence[TopicPartition]) -> None:
        self.calls.append((name, sorted(tp.partition for tp in partitions)))

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        self._log("assign", partitions)

    def pause(self, partitions: list[TopicPartition]) -> None:
        self._log("pause", partitions)

    def resume(self, partitions: list[TopicPartition]) -> None:
        self._log("resume", partitions)

    def seek(self, tp: TopicPartition) -> None:
        self.calls.append(("seek", (tp.partition, tp.offset)))

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[Any]:
        """As librdkafka answers: a TopicPartition per partition, with an offset or an error."""
        return [
            SimpleNamespace(
                topic=tp.topic,
                partition=tp.partition,
                offset=self.committed_at.get(tp.partition, -1001),
                error=self.committed_error,
            )
            for tp in partitions
        ]

    def get_watermark_offsets(self, tp: TopicPartition, **kwargs: Any) -> tuple[int, int]:
        low = self.lows.get(tp.partition, 0)
        if kwargs.get("cached"):
            return low, self.ends.get(tp.partition, 10)
        self.live_asks += 1
        end = self.live_ends.get(tp.partition, self.ends.get(tp.partition, 10))
        if end == -1:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT))
        return low, end

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [
            TopicPartition(tp.topic, tp.partition, self.positions.get(tp.partition, -1001))
            for tp in partitions
        ]

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        self.consume_calls.append((num_messages, timeout))
        if not self.fetches:
            return []
        batch = self.fetches[0][:num_messages]
        self.fetches[0] = self.fetches[0][num_messages:]
        if not self.fetches[0]:
            self.fetches.pop(0)
        return batch

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool) -> None:
        assert asynchronous is False
        if self.commit_fails:
            raise KafkaException(KafkaError(KafkaError.REQUEST_TIMED_OUT))
        self.commits.append([(tp.partition, tp.offset) for tp in offsets])


class FakeHandoff:
    """Records, in order, what the Kafka thread sends to the loop."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def accept(self, batch: list[Any]) -> None:
        self.sent.append(("accept", batch))

    def set_caught_up(self, work: PartitionWork, caught_up: bool) -> None:
        self.sent.append(("caught_up", (work.partition, caught_up)))

    def attach(self, work: PartitionWork, restored: Any) -> None:
        self.sent.append(("attach", work.partition))

    def detach(self, works: list[PartitionWork]) -> None:
        self.sent.append(("detach", [w.partition for w in works]))

    def drain(self, works: list[PartitionWork], timeout: float, *, finish_queued: bool) -> None:
        self.sent.append(("drain", ([w.partition for w in works], finish_queued)))

    @property
    def verdicts(self) -> list[bool]:
        return [told[1] for kind, told in self.sent if kind == "caught_up"]


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

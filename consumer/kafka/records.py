"""A fetched Kafka record, detached from librdkafka's Message so it can cross threads."""

from __future__ import annotations

from dataclasses import dataclass

from consumer.kafka.offsets import PartitionWork


@dataclass(frozen=True, slots=True)
class RawRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    work: PartitionWork
    at_end: bool = False
    """Nothing newer was in the partition when it was fetched: the partition has caught up."""

    def context(self) -> dict[str, object]:
        """Log fields that locate the record."""
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}

"""Kafka chores shared by the demo, the tests and the benchmark: produce a stream, read a topic,
compare a group's committed offsets with the end offsets."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from typing import TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from consumer.model import TrackingEvent
from devkit.encoding import encode_raw

T = TypeVar("T")

_COORDINATOR_MOVING = frozenset(
    {
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
    }
)


def wait_until(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes | None]],
) -> int:
    """Produce ``(key, value)`` pairs (keyed partitioning) and wait for every acknowledgement."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 20,
            "acks": "all",
            "enable.idempotence": True,  # a retried batch must not land after a later one
        }
    )
    failures: list[str] = []

    def on_delivery(err: object, _msg: Message) -> None:
        if err is not None:
            failures.append(str(err))

    count = 0
    for key, value in records:
        while True:
            try:
                producer.produce(topic, value, key=key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)
        count += 1
        producer.poll(0)
    remaining = producer.flush(60)
    if remaining or failures:
        raise RuntimeError(f"{remaining} unflushed, failures: {failures[:3]}")
    return count


def produce_events(bootstrap: str, topic: str, events: Iterable[TrackingEvent]) -> int:
    """Produce scans in raw Avro framing, keyed by fulfillment ID."""
    return produce(bootstrap, topic, ((e.fulfillment_id.encode(), encode_raw(e)) for e in events))


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = _probe(bootstrap)
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in metadata.partitions
        }
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The group's committed offset per partition (-1001 where nothing is committed).

    Retries the transient answers of a coordinator that is still loading or moving."""
    consumer = _probe(bootstrap, group)
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        partitions = [TopicPartition(topic, p) for p in metadata.partitions]
        deadline = time.monotonic() + 30
        while True:
            try:
                committed = consumer.committed(partitions, timeout=10)
                return {tp.partition: tp.offset for tp in committed}
            except KafkaException as exc:
                error = exc.args[0]
                transient = error.retriable() or error.code() in _COORDINATOR_MOVING
                if not transient or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        consumer.close()


def fully_committed(bootstrap: str, group: str, topic: str) -> bool:
    """Every partition committed to its end (an empty partition needs no commit)."""
    committed = committed_offsets(bootstrap, group, topic)
    return all(
        committed[partition] == end or (end == 0 and committed[partition] < 0)
        for partition, end in end_offsets(bootstrap, topic).items()
    )


def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 30) -> list[Message]:
    """Read a topic from the beginning until ``expected`` records arrived (or fail)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": "false",
        }
    )
    consumer.subscribe([topic])
    messages: list[Message] = []
    try:
        deadline = time.monotonic() + timeout
        while len(messages) < expected and time.monotonic() < deadline:
            messages.extend(m for m in consumer.consume(500, 0.5) if m.error() is None)
    finally:
        consumer.close()
    if len(messages) < expected:
        raise TimeoutError(f"read {len(messages)} of {expected} records from {topic}")
    return messages


def _probe(bootstrap: str, group: str | None = None) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group or f"probe-{uuid.uuid4()}",
            "enable.auto.commit": "false",
        }
    )

"""The compacted changelog topic that makes per-shipment state durable (DESIGN §4).

A shipment's state record goes to the same partition number as its input records (explicit
partition, never the partitioner), so restoring input partition p means reading changelog
partition p from the beginning to its end. A tombstone (null value) removes an expired shipment;
compaction keeps the topic as small as the live state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from consumer import metrics
from consumer.errors import ConfigError
from consumer.producer import AsyncProducer
from consumer.rules import ShipmentState
from consumer.state.codec import StateDecodeError, decode_state, encode_state

log = logging.getLogger(__name__)

RESTORE_BATCH = 1000


def ensure_changelog(config: Mapping[str, Any], topic: str, *, input_topic: str) -> None:
    """Create the changelog (compacted, the input's partition count) unless it exists; refuse a
    changelog whose partition count differs: state would land on the wrong partitions."""
    admin = AdminClient(dict(config))
    metadata = admin.list_topics(timeout=30)
    source = metadata.topics.get(input_topic)
    if source is None or not source.partitions:
        raise ConfigError("KAFKA_TOPIC", f"input topic {input_topic} does not exist")
    wanted = len(source.partitions)
    existing = metadata.topics.get(topic)
    if existing is not None:
        if len(existing.partitions) != wanted:
            raise ConfigError(
                "STATE_TOPIC",
                f"{topic} has {len(existing.partitions)} partitions, "
                f"the input topic {input_topic} has {wanted}; they must match",
            )
        return
    new = NewTopic(topic, num_partitions=wanted, config={"cleanup.policy": "compact"})
    for future in admin.create_topics([new]).values():
        try:
            future.result()
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    log.info("created changelog %s with %d partitions", topic, wanted)


class Changelog:
    def __init__(
        self, topic: str, producer: AsyncProducer, consumer_config: Mapping[str, Any]
    ) -> None:
        self.topic = topic
        self._producer = producer
        self._consumer_config = {
            **consumer_config,
            "enable.auto.commit": "false",
            "enable.partition.eof": "false",
        }

    async def write(self, partition: int, fulfillment_id: str, state: ShipmentState | None) -> None:
        """Store (or, with None, tombstone) a shipment's state and wait for the broker's ack."""
        value = None if state is None else encode_state(state)
        await self._producer.produce(
            self.topic, value, key=fulfillment_id.encode(), partition=partition
        )

    def restore(self, partition: int) -> dict[str, ShipmentState]:
        """Read changelog partition ``partition`` to its end (blocking; run it off the loop)."""
        started = time.monotonic()
        consumer = Consumer(dict(self._consumer_config))
        states: dict[str, ShipmentState] = {}
        try:
            tp = TopicPartition(self.topic, partition)
            low, high = consumer.get_watermark_offsets(tp, timeout=30)
            if high > low:
                consumer.assign([TopicPartition(self.topic, partition, OFFSET_BEGINNING)])
                self._read_until(consumer, high, states)
        finally:
            consumer.close()
        elapsed = time.monotonic() - started
        metrics.STATE_RESTORE_DURATION.observe(elapsed)
        log.info(
            "restored %d shipments in %.2fs",
            len(states),
            elapsed,
            extra={"topic": self.topic, "partition": partition},
        )
        return states

    @staticmethod
    def _read_until(consumer: Consumer, high: int, states: dict[str, ShipmentState]) -> None:
        """Apply records until the position reaches ``high`` (compaction may leave gaps)."""
        assigned = consumer.assignment()
        while consumer.position(assigned)[0].offset < high:
            for message in consumer.consume(RESTORE_BATCH, 1.0):
                if message.error() is not None:
                    log.warning("changelog read error: %s", message.error())
                    continue
                key = message.key()
                if key is None:
                    continue
                fulfillment_id = key.decode("utf-8", "replace")
                value = message.value()
                if value is None:
                    states.pop(fulfillment_id, None)
                    continue
                try:
                    states[fulfillment_id] = decode_state(value)
                except StateDecodeError as exc:
                    log.error("skipping unreadable state of %s: %s", fulfillment_id, exc)

"""The compacted changelog topic that makes per-shipment state durable.

A shipment's state record goes to the same partition number as its input records (explicit
partition, never the partitioner), so restoring input partition p means reading changelog
partition p from the beginning to its end. A tombstone (null value) removes an expired shipment;
compaction keeps the topic as small as the live state.

Every record (tombstones too) carries, in the ``state.input.offset`` header, the input offset
its state reflects. A member that lost a partition may still land one late write after the new
owner wrote a newer state; restore keeps, per shipment, the record with the highest input offset
(the later one on a tie), so such a write cannot roll the state back, and asks for the newest
state to be written again so that compaction, which keeps a key's last record, keeps it too.
A record that cannot be read is quarantined: logged, counted, skipped.

Given the rules, a record also carries the shipment's next deadline (``DeadlineHint``), and a
restore keeps the records as they are, checked by their CRC but not decoded: the store schedules
each shipment from its hint and decodes it when it is touched. A record without a hint the
store's rules can trust (format 1, other rules) is scheduled by decoding it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from consumer import metrics
from consumer.errors import ConfigError
from consumer.producer import AsyncProducer
from consumer.rules import RulesConfig, ShipmentState
from consumer.state.codec import (
    FORMAT_V1,
    DeadlineHint,
    StateDecodeError,
    deadline_hint,
    decode_state,
    encode_state,
)
from consumer.state.store import (
    NO_OFFSET,
    UNSCHEDULED,
    RestoredStates,
    deadline_us,
    offset_in,
    pack_record,
    pending_of,
    rules_tag,
)

log = logging.getLogger(__name__)

RESTORE_BATCH = 1000
OFFSET_HEADER = "state.input.offset"


class RestoreCancelled(Exception):
    """The partition was revoked while its state was being restored."""


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
        self,
        topic: str,
        producer: AsyncProducer,
        consumer_config: Mapping[str, Any],
        *,
        rules: RulesConfig | None = None,
    ) -> None:
        """``rules``: the partition stores' rules, to write each record's deadline hint (without
        them every restored shipment is decoded to be scheduled)."""
        self.topic = topic
        self._producer = producer
        self._rules = rules
        self._tag = 0 if rules is None else rules_tag(rules)
        self._consumer_config = {
            **consumer_config,
            "enable.auto.commit": "false",
            "enable.partition.eof": "false",
        }

    async def write(
        self, partition: int, fulfillment_id: str, state: ShipmentState | None, *, offset: int
    ) -> None:
        """Store (or, with None, tombstone) a shipment's state reflecting input records up to
        ``offset``, and wait for the broker's ack."""
        value = None if state is None else encode_state(state, self._hint(state))
        await self._producer.produce(
            self.topic,
            value,
            key=fulfillment_id.encode(),
            partition=partition,
            headers=((OFFSET_HEADER, str(offset).encode()),),
        )

    def _hint(self, state: ShipmentState) -> DeadlineHint | None:
        if self._rules is None:
            return None
        try:
            return DeadlineHint(self._tag, deadline_us(state, self._rules))
        except (OverflowError, ValueError):
            return None  # unschedulable: the restoring store finds out and quarantines it

    def restore(
        self, partition: int, *, cancelled: Callable[[], bool] = lambda: False
    ) -> RestoredStates:
        """Read changelog partition ``partition`` to its end (blocking; run it off the loop).
        Raises ``RestoreCancelled`` soon after ``cancelled()`` turns true."""
        started = time.monotonic()
        consumer = Consumer(dict(self._consumer_config))
        restored = RestoredStates(rules_tag=self._tag)
        try:
            tp = TopicPartition(self.topic, partition)
            low, high = consumer.get_watermark_offsets(tp, timeout=30)
            if high > low:
                consumer.assign([TopicPartition(self.topic, partition, OFFSET_BEGINNING)])
                _Replay(restored).read_until(consumer, high, cancelled)
        finally:
            consumer.close()
        elapsed = time.monotonic() - started
        metrics.STATE_RESTORE_DURATION.observe(elapsed)
        log.info(
            "restored %d shipments in %.2fs",
            len(restored.records),
            elapsed,
            extra={
                "topic": self.topic,
                "partition": partition,
                "quarantined": restored.quarantined,
            },
        )
        return restored


class _Replay:
    """Applies changelog records in log order, keeping the newest record per shipment."""

    def __init__(self, restored: RestoredStates) -> None:
        self._restored = restored
        self._tombstoned: dict[str, int] = {}  # the input offset of each shipment's tombstone
        self._rewrite: set[str] = set()

    def read_until(self, consumer: Consumer, high: int, cancelled: Callable[[], bool]) -> None:
        """Apply records until the position reaches ``high`` (compaction may leave gaps)."""
        assigned = consumer.assignment()
        while consumer.position(assigned)[0].offset < high:
            if cancelled():
                raise RestoreCancelled()
            for message in consumer.consume(RESTORE_BATCH, 1.0):
                if message.error() is not None:
                    log.warning("changelog read error: %s", message.error())
                    continue
                key = message.key()
                if key is not None:
                    self.apply(key.decode("utf-8", "replace"), message)
        self.finish()

    def apply(self, fulfillment_id: str, message: Any) -> None:
        records = self._restored.records
        offset = _input_offset(message.headers())
        known = records.get(fulfillment_id)
        newest = (
            offset_in(known)
            if known is not None
            else self._tombstoned.get(fulfillment_id, NO_OFFSET)
        )
        if offset < newest:
            self._rewrite.add(fulfillment_id)  # a former owner's late write: keep the newer
            return
        self._rewrite.discard(fulfillment_id)
        value = message.value()
        if value is None:
            records.pop(fulfillment_id, None)
            self._tombstoned[fulfillment_id] = offset
            return
        try:
            hint = deadline_hint(value)
            if value[0] == FORMAT_V1:  # read once, kept in the compact format
                value = encode_state(decode_state(value))
        except StateDecodeError as exc:
            self._restored.quarantined += 1
            metrics.STATES_QUARANTINED.labels(reason="unreadable").inc()
            log.error(
                "changelog state set aside: %s",
                exc,
                extra={"fulfillment_id": fulfillment_id, "offset": message.offset()},
            )
            return
        self._tombstoned.pop(fulfillment_id, None)
        trusted = hint is not None and hint.tag == self._restored.rules_tag
        pending = hint.deadline_us if trusted and hint is not None else UNSCHEDULED
        records[fulfillment_id] = pack_record(offset, pending, value)

    def finish(self) -> None:
        """Schedule what the hints tell, list the rest for the store."""
        restored = self._restored
        for fulfillment_id, value in restored.records.items():
            pending = pending_of(value)
            if pending == UNSCHEDULED:
                restored.unscheduled.append(fulfillment_id)
            else:
                restored.timers.add(fulfillment_id, pending)
        restored.rewrite = sorted(self._rewrite & restored.records.keys())


def _input_offset(headers: list[tuple[str, bytes]] | None) -> int:
    for name, value in headers or ():
        if name == OFFSET_HEADER:
            try:
                return int(value)
            except ValueError:
                return NO_OFFSET
    return NO_OFFSET

"""Caught-up detection: has a partition's consumer position reached the end of its log?

Contract (Kafka thread only): a partition is caught up when it is not paused and its position is
at or past the high watermark. ``on_batch`` gives the verdict for a partition's last fetched
record (from the cached watermark, no request); ``update`` tells the loop, through
``LoopHandoff.set_caught_up``, when a verdict changed without a record saying so, asking the
broker for the live watermark before turning a partition caught up, at most once a second per
partition (``LIVE_CHECK_INTERVAL_SECONDS``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException, TopicPartition

from consumer.kafka.backpressure import Flow
from consumer.kafka.handoff import LoopHandoff
from consumer.kafka.offsets import PartitionWork

WATERMARK_CHECK_TIMEOUT_SECONDS = 2.0
LIVE_CHECK_INTERVAL_SECONDS = 1.0


class CaughtUp:
    """What the loop was last told per partition, and when the broker was last asked."""

    def __init__(
        self,
        flow: Flow,
        handoff: LoopHandoff,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._flow = flow
        self._handoff = handoff
        self._clock = clock
        self._told: dict[PartitionWork, bool] = {}  # what the loop was last told
        self._live_checked: dict[PartitionWork, float] = {}  # when the broker was last asked

    def on_batch(self, consumer: Consumer, work: PartitionWork) -> bool:
        """The verdict carried by the partition's last record of a batch (``at_end``)."""
        at_end = self.at_log_end(consumer, work)
        self._told[work] = at_end
        return at_end

    def update(self, consumer: Consumer, works: list[PartitionWork]) -> None:
        """Tell the loop when a partition's caught-up state changed without a record saying so.

        Caught up means the consumer's position reached the log end: a partition with newer
        records still unread is not, so its timers wait on stream time instead of firing on the
        wall clock for shipments whose newer scans are unread. The position, not ``last offset
        + 1``, because a transactional producer's commit marker sits after the last record. A
        paused partition (backpressure, an open circuit, the auth gate) is never caught up:
        librdkafka need not refresh a paused partition's high watermark, so records arriving
        meanwhile can go unseen (tests/broker/test_caught_up.py: with the position check alone, a
        paused partition reported a stall its unread "delivered" scan had made false).
        Its timers are delayed, not lost: detection times are the deadlines themselves.
        Sent through the loop's queue, behind the records already handed over, so the rules
        switch to the wall clock only after those records were accepted."""
        for work in works:
            if work.next_offset is None:
                continue
            at_end = self.at_log_end(consumer, work)
            if at_end and not self._told.get(work):
                # Becoming caught up without a record saying so: the cached watermark may be
                # from before a pause or a seek, so ask the broker, at most once a second per
                # partition (each ask blocks this thread up to its timeout).
                now = self._clock()
                if now - self._live_checked.get(work, -LIVE_CHECK_INTERVAL_SECONDS) < (
                    LIVE_CHECK_INTERVAL_SECONDS
                ):
                    continue
                self._live_checked[work] = now
                at_end = self.at_log_end(consumer, work, live=True)
            if self._told.get(work) != at_end:
                self._told[work] = at_end
                self._handoff.set_caught_up(work, at_end)

    def forget(self, work: PartitionWork) -> None:
        """The assignment ended."""
        self._told.pop(work, None)
        self._live_checked.pop(work, None)

    def at_log_end(self, consumer: Consumer, work: PartitionWork, *, live: bool = False) -> bool:
        """Not paused, and the position at or past the high watermark: the one librdkafka last
        saw (no request), or with ``live`` the broker's (False if it cannot say in time)."""
        if self._flow.is_paused(work):
            return False
        tp = TopicPartition(work.topic, work.partition)
        try:
            if live:
                end = consumer.get_watermark_offsets(tp, timeout=WATERMARK_CHECK_TIMEOUT_SECONDS)[1]
            else:
                end = consumer.get_watermark_offsets(tp, cached=True)[1]
        except KafkaException:
            return False
        position = int(consumer.position([tp])[0].offset)
        if position < 0:  # librdkafka knows no position before the first record after a seek
            position = work.next_offset if work.next_offset is not None else -1
        return int(end) >= 0 and position >= int(end)

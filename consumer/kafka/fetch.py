"""Fetching and hand-over: librdkafka messages → ``RawRecord`` batches on the loop.

Contract (Kafka thread only): ``fetch`` returns what is fetched, up to ``FETCH_BATCH``, waiting
only when nothing is. ``Fetcher.hand_over`` registers each record's offset with its partition's
``PartitionWork`` (so nothing past it is committed before it is done), drops records of
partitions not ours or not positioned yet (re-read after the seek), marks each partition's last
record with its caught-up verdict, and sends the batch to the loop in one message.
"""

from __future__ import annotations

import dataclasses
import logging

from confluent_kafka import Consumer, Message

from consumer.kafka.caught_up import CaughtUp
from consumer.kafka.handoff import LoopHandoff
from consumer.kafka.offsets import OffsetTracker, PartitionWork
from consumer.kafka.records import RawRecord
from consumer.ops import metrics

log = logging.getLogger(__name__)

FETCH_BATCH = 500
POLL_TIMEOUT_SECONDS = 0.1


def fetch(consumer: Consumer) -> list[Message]:
    """Whatever is fetched, up to a batch, without waiting for a full batch (``consume(n, t)``
    waits until it has n records or t passed, which would add up to t to every record's
    latency on a quiet stream); only an empty fetch waits, for the first record."""
    messages: list[Message] = consumer.consume(FETCH_BATCH, 0)
    if not messages:
        messages = consumer.consume(1, POLL_TIMEOUT_SECONDS)
        if messages:
            messages += consumer.consume(FETCH_BATCH - 1, 0)
    return messages


class Fetcher:
    """Turns fetched messages into a batch for the pipeline."""

    def __init__(
        self, topic: str, tracker: OffsetTracker, caught_up: CaughtUp, handoff: LoopHandoff
    ) -> None:
        self._topic = topic
        self._tracker = tracker
        self._caught_up = caught_up
        self._handoff = handoff

    def hand_over(self, consumer: Consumer, messages: list[Message]) -> None:
        batch: list[RawRecord] = []
        last: dict[PartitionWork, int] = {}  # index in ``batch`` of each partition's last record
        for message in messages:
            error = message.error()
            if error is not None:
                log.warning("fetch error: %s", error.str())
                continue
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            work = self._tracker.get(topic, partition)
            if work is None or work.next_offset is None:
                continue  # not ours, or fetched before its restore: re-read after the seek
            work.register(offset)
            work.next_offset = offset + 1
            last[work] = len(batch)
            batch.append(
                RawRecord(
                    topic,
                    partition,
                    offset,
                    message.key(),
                    message.value(),
                    tuple(message.headers() or ()),
                    work,
                )
            )
        for work, index in last.items():
            if self._caught_up.on_batch(consumer, work):
                batch[index] = dataclasses.replace(batch[index], at_end=True)
        if batch:
            metrics.RECORDS_CONSUMED.labels(self._topic).inc(len(batch))
            self._handoff.accept(batch)

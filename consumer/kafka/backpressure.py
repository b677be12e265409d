"""Pause and resume: which partitions may fetch, so memory stays bounded (Kafka thread only).

Contract: ``backpressure`` is the pure decision; ``Flow`` applies it to the librdkafka consumer
and is the one owner of the set of paused partitions. A partition is paused from its assignment
(``hold``) until its state is restored and positioned, after which ``backpressure`` resumes it
like any other paused partition (so not while the circuit is open and records wait); and
whenever ``backpressure`` says so. Caught-up detection reads ``is_paused``: a paused partition
is never caught up.
"""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition

from consumer.kafka.offsets import PartitionWork
from consumer.ops import metrics

Key = tuple[str, int]


def backpressure(
    works: list[PartitionWork], paused: set[Key], *, limit: int, circuit_open: bool
) -> tuple[list[Key], list[Key]]:
    """Which partitions to pause and which to resume, so memory stays bounded.

    A partition is paused once ``limit`` of its records are buffered and resumed at half of it.
    While the circuit is open every partition is paused, as long as this member holds records
    (one of their calls is the circuit's probe). With nothing buffered, nothing could probe and
    the circuit would stay open for ever (a rebalance can take every waiting call away): the
    partitions flow again, and their first records' calls wait for the probe turn.
    """
    hold_all = circuit_open and any(work.buffered for work in works)
    to_pause, to_resume = [], []
    for work in works:
        key = (work.topic, work.partition)
        if work.next_offset is None:
            continue  # still restoring: stays paused
        buffered = work.buffered
        if key not in paused and (buffered >= limit or hold_all):
            to_pause.append(key)
        elif key in paused and buffered <= limit // 2 and not hold_all:
            to_resume.append(key)
    return to_pause, to_resume


class Flow:
    """The paused partitions, and the pause/resume calls that change them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._paused: set[Key] = set()

    def is_paused(self, work: PartitionWork) -> bool:
        return (work.topic, work.partition) in self._paused

    def hold(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Pause newly assigned partitions until they are positioned."""
        if partitions:
            consumer.pause(partitions)
        self._paused.update((tp.topic, tp.partition) for tp in partitions)

    def forget(self, topic: str, partition: int) -> None:
        """The partition was revoked or lost: nothing to resume."""
        self._paused.discard((topic, partition))

    def apply(self, consumer: Consumer, works: list[PartitionWork], *, circuit_open: bool) -> None:
        """Pause and resume as ``backpressure`` decides."""
        to_pause, to_resume = backpressure(
            works, self._paused, limit=self.limit, circuit_open=circuit_open
        )
        if to_pause:
            consumer.pause([TopicPartition(t, p) for t, p in to_pause])
            self._paused.update(to_pause)
        if to_resume:
            consumer.resume([TopicPartition(t, p) for t, p in to_resume])
            self._paused.difference_update(to_resume)
        metrics.PAUSED_PARTITIONS.set(len(self._paused))

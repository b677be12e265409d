"""Commits: per partition, the highest contiguous done offset + 1, never more (Kafka thread).

Contract: ``commit`` commits synchronously what each ``PartitionWork`` reports as newly done
(``to_commit``, an int read under the work's lock), records it as committed only once the
broker accepted it, and on failure logs and leaves it for the next attempt. ``commit_if_due`` is
the periodic commit; revocation and shutdown commit directly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException, TopicPartition

from consumer.kafka.offsets import PartitionWork
from consumer.ops import metrics

log = logging.getLogger(__name__)


class Committer:
    def __init__(
        self, interval_seconds: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval = interval_seconds
        self._clock = clock
        self._next = clock() + interval_seconds

    def commit_if_due(self, consumer: Consumer, works: list[PartitionWork]) -> None:
        """The periodic commit: once an interval has passed since the last one ended."""
        if self._clock() >= self._next:
            self.commit(consumer, works)
            self._next = self._clock() + self._interval

    def commit(self, consumer: Consumer, works: list[PartitionWork]) -> None:
        pending = [(work, offset) for work in works if (offset := work.to_commit()) is not None]
        if not pending:
            return
        try:
            consumer.commit(
                offsets=[TopicPartition(w.topic, w.partition, off) for w, off in pending],
                asynchronous=False,
            )
        except KafkaException as exc:
            log.warning("commit failed, will retry: %s", exc)
            return
        for work, offset in pending:
            work.committed = offset
            if not work.revoked:  # a revoked partition's series was removed: do not bring it back
                metrics.COMMITTED_OFFSET.labels(work.topic, str(work.partition)).set(offset)

"""Restoring a newly assigned partition's state, then positioning it where its records start.

Contract: ``Restorer.submit`` reads the partition's state from the changelog on a restore
thread, retrying with the backoff ``RESTORE_BACKOFF`` until it succeeds or the assignment is
revoked; the state goes to the loop (``LoopHandoff.attach``) and the work to ``restored``.
``Positioner.start_restored`` (Kafka thread) then positions each such partition: the committed
offset, or ``auto.offset.reset``'s end without one, by a seek, and ``PartitionWork.start_at``;
only then do its records flow (``Fetcher`` drops them before) and ``signals.restoring`` stops
counting it. A positioning the broker cannot answer yet is retried on the next loop turn.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from confluent_kafka import Consumer, KafkaException, TopicPartition

from consumer.backoff import Backoff
from consumer.errors import RestoreCancelled
from consumer.kafka.handoff import LoopHandoff
from consumer.kafka.offsets import OffsetTracker, PartitionWork
from consumer.signals import Signals
from consumer.state.packed import RestoredStates

log = logging.getLogger(__name__)

POSITION_TIMEOUT_SECONDS = 10.0
"""Each broker request positioning a restored partition; two of them stay well inside the
liveness timeout of the thread that makes them."""
RESTORE_BACKOFF = Backoff(0.5, 30.0, jitter=False)
"""After the n-th failed restore (n ≥ 1): 1, 2, 4 … 30 s."""
RESTORE_THREADS = 2


class StateSource(Protocol):
    """Where a partition's state is read from (``consumer.state.changelog.Changelog``)."""

    def restore(self, partition: int, *, cancelled: Callable[[], bool] = ...) -> RestoredStates: ...


class Restorer:
    """The restore threads."""

    def __init__(
        self,
        states: StateSource,
        handoff: LoopHandoff,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._states = states
        self._handoff = handoff
        self._sleep = sleep
        self._threads = ThreadPoolExecutor(
            max_workers=RESTORE_THREADS, thread_name_prefix="restore"
        )
        self.restored: queue.SimpleQueue[PartitionWork] = queue.SimpleQueue()
        """Restored and attached, not yet positioned: read by the Kafka thread."""

    def submit(self, work: PartitionWork) -> None:
        self._threads.submit(self.restore, work)

    def restore(self, work: PartitionWork) -> None:
        """Runs on a restore thread; retries until it succeeds or the partition is revoked."""
        attempt = 0
        while not work.revoked:
            try:
                states = self._states.restore(work.partition, cancelled=lambda: work.revoked)
            except RestoreCancelled:
                return
            except Exception:
                attempt += 1
                log.exception("state restore failed, retrying", extra={"partition": work.partition})
                self._sleep(RESTORE_BACKOFF.delay(attempt))
                continue
            self._handoff.attach(work, states)
            self.restored.put(work)
            return

    def shutdown(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)


class Positioner:
    """Seeks restored partitions to where they start (Kafka thread)."""

    def __init__(
        self,
        tracker: OffsetTracker,
        restored: queue.SimpleQueue[PartitionWork],
        signals: Signals,
        *,
        start_at_end: bool,
    ) -> None:
        self._tracker = tracker
        self._restored = restored
        self._signals = signals
        self._start_at_end = start_at_end

    def start_restored(self, consumer: Consumer) -> None:
        """Partitions whose state is attached: seek to where they start, let them flow.

        The seek makes the committed offset the start even if librdkafka fetched some records
        between the assignment and the pause (those were dropped in ``Fetcher.hand_over``)."""
        retry: list[PartitionWork] = []
        while not self._restored.empty():
            work = self._restored.get()
            key = (work.topic, work.partition)
            if work.revoked or self._tracker.get(*key) is not work:
                self._signals.restore_finished(work)  # this assignment's, not a newer one's
                continue
            try:
                start, committed = self._position(consumer, work)
            except KafkaException as exc:
                log.warning("cannot position %s[%d] yet: %s", *key, exc)
                retry.append(work)
                continue
            # A new group commits where it starts, so that a restart before its first record
            # resumes there instead of applying auto.offset.reset again (with ``latest`` that
            # would skip whatever arrived while it was down).
            work.start_at(start, commit=committed < 0)
            self._signals.restore_finished(work)
        for work in retry:
            self._restored.put(work)

    def _position(self, consumer: Consumer, work: PartitionWork) -> tuple[int, int]:
        """Seek; the start offset and the committed one (negative: none yet)."""
        tp = TopicPartition(work.topic, work.partition)
        [position] = consumer.committed([tp], timeout=POSITION_TIMEOUT_SECONDS)
        if position.error is not None:  # e.g. the coordinator still loading: not "none"
            raise KafkaException(position.error)
        committed = int(position.offset)
        low, high = consumer.get_watermark_offsets(tp, timeout=POSITION_TIMEOUT_SECONDS)
        # No committed offset yet (a new group): auto.offset.reset decides.
        start = committed if committed >= 0 else high if self._start_at_end else low
        consumer.seek(TopicPartition(work.topic, work.partition, start))
        return int(start), committed

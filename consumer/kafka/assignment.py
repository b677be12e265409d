"""Rebalance callbacks: partitions gained, revoked and lost (run by librdkafka in ``consume``).

Contract: an assigned partition gets a new ``PartitionWork``, starts paused and restoring
(``Restorer``), and counts in ``signals.restoring`` until positioned. A revoked partition's
in-flight calls are drained on the loop (bounded by ``revoke_timeout``), its done offsets are
committed, and the pipeline detaches it: it changes hands only after its finished work is
committed. A lost partition is drained and detached with nothing committed (another member owns
it already). Either way its per-partition metric series go.
"""

from __future__ import annotations

import contextlib
import logging

from confluent_kafka import Consumer, TopicPartition

from consumer.kafka.backpressure import Flow
from consumer.kafka.caught_up import CaughtUp
from consumer.kafka.commits import Committer
from consumer.kafka.handoff import LoopHandoff
from consumer.kafka.offsets import OffsetTracker, PartitionWork
from consumer.kafka.restore import Restorer
from consumer.ops import metrics
from consumer.signals import Signals

log = logging.getLogger(__name__)


class Assignments:
    def __init__(
        self,
        *,
        tracker: OffsetTracker,
        flow: Flow,
        caught_up: CaughtUp,
        restorer: Restorer,
        committer: Committer,
        handoff: LoopHandoff,
        signals: Signals,
        revoke_timeout: float,
    ) -> None:
        self._tracker = tracker
        self._flow = flow
        self._caught_up = caught_up
        self._restorer = restorer
        self._committer = committer
        self._handoff = handoff
        self._signals = signals
        self._revoke_timeout = revoke_timeout

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Assign paused; restore each partition's state off this thread, then resume it."""
        consumer.incremental_assign(partitions)
        self._flow.hold(consumer, partitions)
        for tp in partitions:
            work = self._tracker.assign(tp.topic, tp.partition)
            self._signals.restore_started(work)
            self._restorer.submit(work)
        self._signals.joined = True
        metrics.ASSIGNED_PARTITIONS.set(len(self._tracker.all()))
        log.info("assigned %s", _names(partitions))

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        works = self.release(partitions)
        self._handoff.drain(works, self._revoke_timeout, finish_queued=False)
        self._committer.commit(consumer, works)
        self._handoff.detach(works)
        log.info("revoked %s", _names(partitions))

    def on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Ownership is already gone: stop the work, commit nothing."""
        works = self.release(partitions)
        self._handoff.drain(works, self._revoke_timeout, finish_queued=False)
        self._handoff.detach(works)
        log.warning("lost %s", _names(partitions))

    def release(self, partitions: list[TopicPartition]) -> list[PartitionWork]:
        """Forget the partitions everywhere on this side; their works, marked revoked."""
        works = []
        for tp in partitions:
            work = self._tracker.revoke(tp.topic, tp.partition)
            self._flow.forget(tp.topic, tp.partition)
            if work is not None:
                works.append(work)
                self._signals.restore_finished(work)
                self._caught_up.forget(work)
            for series in (metrics.CONSUMER_LAG, metrics.COMMITTED_OFFSET):
                with contextlib.suppress(KeyError):
                    series.remove(tp.topic, str(tp.partition))
        metrics.ASSIGNED_PARTITIONS.set(len(self._tracker.all()))
        return works


def _names(partitions: list[TopicPartition]) -> list[str]:
    return [f"{tp.topic}[{tp.partition}]" for tp in partitions]

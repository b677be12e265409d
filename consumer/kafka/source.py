"""The Kafka thread's run loop: composes fetching, restores, caught-up detection, backpressure
and commits, and shuts down gracefully.

Every call on the librdkafka consumer happens on this one thread. Records cross to the asyncio
loop with ``call_soon_threadsafe`` (``handoff``); rebalance callbacks (``assignment``, which
librdkafka runs inside ``consume``) wait on the loop for the revoked partitions' in-flight calls
before committing, so a partition changes hands only after its finished work is committed.
Commits carry, per partition, the highest contiguous done offset + 1 (``offsets``), never more.

A newly assigned partition stays paused while a restore thread reads its state from the
changelog; it is resumed, and its records flow, only once that state is attached to the pipeline
(``restore``). The thread also tells each partition whether it has caught up with the end of the
log (``caught_up``), which switches its rules clock from stream time to the wall clock.
What crosses threads, and who writes it: ``consumer.signals``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

from consumer.kafka.assignment import Assignments
from consumer.kafka.backpressure import Flow
from consumer.kafka.caught_up import CaughtUp
from consumer.kafka.commits import Committer
from consumer.kafka.config import starts_at_end
from consumer.kafka.fetch import Fetcher, fetch
from consumer.kafka.handoff import LoopHandoff, PipelineEntry
from consumer.kafka.offsets import OffsetTracker
from consumer.kafka.restore import Positioner, Restorer, StateSource
from consumer.ops import metrics
from consumer.signals import Signals

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceSettings:
    topic: str
    max_buffered_per_partition: int
    commit_interval_seconds: float
    revoke_timeout_seconds: float
    shutdown_grace_seconds: float


class KafkaSource:
    """Consumes ``settings.topic`` into ``pipeline`` on the thread that calls ``run``."""

    def __init__(
        self,
        settings: SourceSettings,
        config: Mapping[str, Any],
        pipeline: PipelineEntry,
        loop: asyncio.AbstractEventLoop,
        signals: Signals,
        changelog: StateSource,
    ) -> None:
        self._settings = settings
        self._config = {**config, "stats_cb": self._record_lag, "error_cb": _log_error}
        self._signals = signals
        self.tracker = OffsetTracker()
        self.handoff = LoopHandoff(loop, pipeline)
        self.flow = Flow(settings.max_buffered_per_partition)
        self.caught_up = CaughtUp(self.flow, self.handoff)
        self.committer = Committer(settings.commit_interval_seconds)
        self.restorer = Restorer(changelog, self.handoff)
        self.positioner = Positioner(
            self.tracker,
            self.restorer.restored,
            signals,
            start_at_end=starts_at_end(self._config),
        )
        self.assignments = Assignments(
            tracker=self.tracker,
            flow=self.flow,
            caught_up=self.caught_up,
            restorer=self.restorer,
            committer=self.committer,
            handoff=self.handoff,
            signals=signals,
            revoke_timeout=settings.revoke_timeout_seconds,
        )
        self.fetcher = Fetcher(settings.topic, self.tracker, self.caught_up, self.handoff)

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set, then shut down gracefully."""
        self._signals.beat_kafka()  # liveness watches this thread from its start, not first poll
        consumer = Consumer(self._config)
        consumer.subscribe(
            [self._settings.topic],
            on_assign=self.assignments.on_assign,
            on_revoke=self.assignments.on_revoke,
            on_lost=self.assignments.on_lost,
        )
        try:
            while not stop.is_set():
                self.turn(consumer)
            self._shutdown(consumer)
        finally:
            consumer.close()
            self.restorer.shutdown()

    def turn(self, consumer: Consumer) -> None:
        """One turn of the loop: fetch and hand over, position what was restored, tell the
        caught-up changes, pause or resume, commit when due."""
        self._signals.beat_kafka()
        self.fetcher.hand_over(consumer, fetch(consumer))
        self.positioner.start_restored(consumer)
        works = self.tracker.all()
        self.caught_up.update(consumer, works)
        self.flow.apply(consumer, works, circuit_open=self._signals.circuit_open)
        self.committer.commit_if_due(consumer, self.tracker.all())
        metrics.BUFFERED_RECORDS.set(self.tracker.buffered)

    def _shutdown(self, consumer: Consumer) -> None:
        """Stop fetching, let queued work finish within the grace period, commit what is done."""
        works = self.tracker.all()
        consumer.pause([TopicPartition(w.topic, w.partition) for w in works])
        log.info("shutting down: draining %d buffered records", self.tracker.buffered)
        self.handoff.drain(works, self._settings.shutdown_grace_seconds, finish_queued=True)
        self.committer.commit(consumer, works)

    def _record_lag(self, stats_json: str) -> None:
        """librdkafka statistics → lag per assigned partition (against the committed offset)."""
        stats = json.loads(stats_json)
        for topic, topic_stats in stats.get("topics", {}).items():
            for partition, p in topic_stats.get("partitions", {}).items():
                lag = p.get("consumer_lag", -1)
                if lag >= 0 and self.tracker.get(topic, int(partition)) is not None:
                    metrics.CONSUMER_LAG.labels(topic, partition).set(lag)


def _log_error(error: KafkaError) -> None:
    log.warning("kafka: %s", error.str())

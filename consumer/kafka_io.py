"""The Kafka thread: fetch, hand batches to the loop, pause for backpressure, commit, rebalance.

Every call on the librdkafka consumer happens on this one thread. Records cross to the asyncio
loop with ``call_soon_threadsafe``; rebalance callbacks (which librdkafka runs inside
``consume``) wait on the loop for the revoked partitions' in-flight calls before committing, so a
partition changes hands only after its finished work is committed. Commits carry, per partition,
the highest contiguous done offset + 1 (``consumer.offsets``), never more.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from consumer import metrics
from consumer.health import Health
from consumer.offsets import OffsetTracker, PartitionWork
from consumer.pipeline import Pipeline
from consumer.records import RawRecord

log = logging.getLogger(__name__)

FETCH_BATCH = 500
POLL_TIMEOUT_SECONDS = 0.1


@dataclass(frozen=True)
class SourceSettings:
    topic: str
    max_buffered_per_partition: int
    commit_interval_seconds: float
    revoke_timeout_seconds: float
    shutdown_grace_seconds: float


def consumer_config(common: Mapping[str, Any], group_id: str) -> dict[str, Any]:
    """librdkafka settings: manual commits of done offsets only, cooperative rebalancing.
    ``common`` (bootstrap, logger, the KAFKA_* pass-through) wins over these defaults."""
    return {
        "group.id": group_id,
        "enable.auto.commit": "false",
        "enable.auto.offset.store": "false",
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
        "statistics.interval.ms": 5000,
        **common,
    }


class KafkaSource:
    def __init__(
        self,
        settings: SourceSettings,
        config: Mapping[str, Any],
        pipeline: Pipeline,
        loop: asyncio.AbstractEventLoop,
        health: Health,
        circuit_open: threading.Event,
    ) -> None:
        self._settings = settings
        self._config = {
            **config,
            "stats_cb": self._record_lag,
            "error_cb": _log_error,
        }
        self._pipeline = pipeline
        self._loop = loop
        self._health = health
        self._circuit_open = circuit_open
        self._tracker = OffsetTracker()
        self._paused: set[tuple[str, int]] = set()

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set, then shut down gracefully."""
        consumer = Consumer(self._config)
        consumer.subscribe(
            [self._settings.topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        next_commit = time.monotonic() + self._settings.commit_interval_seconds
        try:
            while not stop.is_set():
                self._health.beat()
                self._hand_over(consumer.consume(FETCH_BATCH, POLL_TIMEOUT_SECONDS))
                self._apply_backpressure(consumer)
                if time.monotonic() >= next_commit:
                    self._commit(consumer, self._tracker.all())
                    next_commit = time.monotonic() + self._settings.commit_interval_seconds
                metrics.BUFFERED_RECORDS.set(self._tracker.buffered)
            self._shutdown(consumer)
        finally:
            consumer.close()

    def _hand_over(self, messages: list[Message]) -> None:
        batch: list[RawRecord] = []
        for message in messages:
            error = message.error()
            if error is not None:
                log.warning("fetch error: %s", error.str())
                continue
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            work = self._tracker.get(topic, partition)
            if work is None:
                continue
            work.register(offset)
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
        if batch:
            self._loop.call_soon_threadsafe(self._pipeline.accept, batch)

    def _apply_backpressure(self, consumer: Consumer) -> None:
        """Pause a partition over its buffer limit (or all while the circuit is open); resume
        once below half, so a Redo outage cannot grow memory without bound."""
        limit = self._settings.max_buffered_per_partition
        to_pause, to_resume = [], []
        for work in self._tracker.all():
            key = (work.topic, work.partition)
            buffered = work.buffered
            if key not in self._paused and (buffered >= limit or self._circuit_open.is_set()):
                to_pause.append(key)
            elif key in self._paused and buffered <= limit // 2 and not self._circuit_open.is_set():
                to_resume.append(key)
        if to_pause:
            consumer.pause([TopicPartition(t, p) for t, p in to_pause])
            self._paused.update(to_pause)
        if to_resume:
            consumer.resume([TopicPartition(t, p) for t, p in to_resume])
            self._paused.difference_update(to_resume)
        metrics.PAUSED_PARTITIONS.set(len(self._paused))

    def _commit(self, consumer: Consumer, works: list[PartitionWork]) -> None:
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
            metrics.COMMITTED_OFFSET.labels(work.topic, str(work.partition)).set(offset)

    def _drain(self, works: list[PartitionWork], timeout: float, *, finish_queued: bool) -> None:
        """Wait, on the loop, for the partitions' work; bounded so a rebalance cannot hang."""
        if not works:
            return
        future = asyncio.run_coroutine_threadsafe(
            self._pipeline.drain(works, within=timeout, finish_queued=finish_queued), self._loop
        )
        if not future.result(timeout + 5):
            log.warning(
                "calls still in flight after %.0fs; their records stay uncommitted", timeout
            )

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._tracker.assign(tp.topic, tp.partition)
        self._health.joined = True
        metrics.ASSIGNED_PARTITIONS.set(len(self._tracker.all()))
        log.info("assigned %s", _names(partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        works = self._release(partitions)
        self._drain(works, self._settings.revoke_timeout_seconds, finish_queued=False)
        self._commit(consumer, works)
        log.info("revoked %s", _names(partitions))

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Ownership is already gone: stop the work, commit nothing."""
        works = self._release(partitions)
        self._drain(works, self._settings.revoke_timeout_seconds, finish_queued=False)
        log.warning("lost %s", _names(partitions))

    def _release(self, partitions: list[TopicPartition]) -> list[PartitionWork]:
        works = []
        for tp in partitions:
            work = self._tracker.revoke(tp.topic, tp.partition)
            if work is not None:
                works.append(work)
            self._paused.discard((tp.topic, tp.partition))
            with contextlib.suppress(KeyError):
                metrics.CONSUMER_LAG.remove(tp.topic, str(tp.partition))
        metrics.ASSIGNED_PARTITIONS.set(len(self._tracker.all()))
        return works

    def _record_lag(self, stats_json: str) -> None:
        """librdkafka statistics → lag per assigned partition (against the committed offset)."""
        stats = json.loads(stats_json)
        for topic, topic_stats in stats.get("topics", {}).items():
            for partition, p in topic_stats.get("partitions", {}).items():
                lag = p.get("consumer_lag", -1)
                if lag >= 0 and self._tracker.get(topic, int(partition)) is not None:
                    metrics.CONSUMER_LAG.labels(topic, partition).set(lag)

    def _shutdown(self, consumer: Consumer) -> None:
        """Stop fetching, let queued work finish within the grace period, commit what is done."""
        works = self._tracker.all()
        consumer.pause([TopicPartition(w.topic, w.partition) for w in works])
        log.info("shutting down: draining %d buffered records", self._tracker.buffered)
        self._drain(works, self._settings.shutdown_grace_seconds, finish_queued=True)
        self._commit(consumer, works)


def _names(partitions: list[TopicPartition]) -> list[str]:
    return [f"{tp.topic}[{tp.partition}]" for tp in partitions]


def _log_error(error: KafkaError) -> None:
    log.warning("kafka: %s", error.str())

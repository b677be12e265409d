"""The Kafka thread: fetch, hand batches to the loop, pause for backpressure, commit, rebalance.

Every call on the librdkafka consumer happens on this one thread. Records cross to the asyncio
loop with ``call_soon_threadsafe``; rebalance callbacks (which librdkafka runs inside
``consume``) wait on the loop for the revoked partitions' in-flight calls before committing, so a
partition changes hands only after its finished work is committed. Commits carry, per partition,
the highest contiguous done offset + 1 (``consumer.kafka.offsets``), never more.

A newly assigned partition stays paused while a restore thread reads its state from the
changelog; it is resumed, and its records flow, only once that state is attached to the pipeline.
The thread also tells each partition whether it has caught up with the end of the log, which
switches its rules clock from stream time to the wall clock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import json
import logging
import queue
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from consumer.kafka.offsets import OffsetTracker, PartitionWork
from consumer.kafka.records import RawRecord
from consumer.ops import metrics
from consumer.ops.health import Health
from consumer.processing.processor import Processor
from consumer.state.changelog import Changelog, RestoreCancelled

log = logging.getLogger(__name__)

FETCH_BATCH = 500
POLL_TIMEOUT_SECONDS = 0.1
POSITION_TIMEOUT_SECONDS = 10.0
"""Each broker request positioning a restored partition; two of them stay well inside the
liveness timeout of the thread that makes them."""
WATERMARK_CHECK_TIMEOUT_SECONDS = 2.0
LIVE_CHECK_INTERVAL_SECONDS = 1.0


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
        pipeline: Processor,
        loop: asyncio.AbstractEventLoop,
        health: Health,
        circuit_open: threading.Event,
        changelog: Changelog,
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
        self._changelog = changelog
        self._restorer = ThreadPoolExecutor(max_workers=2, thread_name_prefix="restore")
        self._restored: queue.SimpleQueue[PartitionWork] = queue.SimpleQueue()
        self._told_caught_up: dict[PartitionWork, bool] = {}  # what the loop was last told
        self._live_checked: dict[PartitionWork, float] = {}  # when the broker was last asked
        reset = str(self._config.get("auto.offset.reset", "earliest")).lower()
        self._start_at_end = reset in ("latest", "largest", "end")

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
                self._hand_over(consumer, _fetch(consumer))
                self._start_restored(consumer)
                self._update_caught_up(consumer)
                self._apply_backpressure(consumer)
                if time.monotonic() >= next_commit:
                    self._commit(consumer, self._tracker.all())
                    next_commit = time.monotonic() + self._settings.commit_interval_seconds
                metrics.BUFFERED_RECORDS.set(self._tracker.buffered)
            self._shutdown(consumer)
        finally:
            consumer.close()
            self._restorer.shutdown(wait=False, cancel_futures=True)

    def _hand_over(self, consumer: Consumer, messages: list[Message]) -> None:
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
            at_end = self._at_log_end(consumer, work)
            self._told_caught_up[work] = at_end
            if at_end:
                batch[index] = dataclasses.replace(batch[index], at_end=True)
        if batch:
            metrics.RECORDS_CONSUMED.labels(self._settings.topic).inc(len(batch))
            self._loop.call_soon_threadsafe(self._pipeline.accept, batch)

    def _apply_backpressure(self, consumer: Consumer) -> None:
        to_pause, to_resume = backpressure(
            self._tracker.all(),
            self._paused,
            limit=self._settings.max_buffered_per_partition,
            circuit_open=self._circuit_open.is_set(),
        )
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
        try:
            finished = future.result(timeout + 5)
        except concurrent.futures.TimeoutError:  # the loop is overloaded: do not crash here
            future.cancel()
            finished = False
        if not finished:
            log.warning(
                "calls still in flight after %.0fs; their records stay uncommitted", timeout
            )

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Assign paused; restore each partition's state off this thread, then resume it."""
        consumer.incremental_assign(partitions)
        if partitions:
            consumer.pause(partitions)
        for tp in partitions:
            work = self._tracker.assign(tp.topic, tp.partition)
            self._paused.add((tp.topic, tp.partition))
            self._health.restoring.add(work)
            self._restorer.submit(self._restore, work)
        self._health.joined = True
        metrics.ASSIGNED_PARTITIONS.set(len(self._tracker.all()))
        log.info("assigned %s", _names(partitions))

    def _restore(self, work: PartitionWork) -> None:
        """Runs on a restore thread; retries until it succeeds or the partition is revoked."""
        attempt = 0
        while not work.revoked:
            try:
                states = self._changelog.restore(work.partition, cancelled=lambda: work.revoked)
            except RestoreCancelled:
                return
            except Exception:
                attempt += 1
                log.exception("state restore failed, retrying", extra={"partition": work.partition})
                time.sleep(min(30.0, 0.5 * 2**attempt))
                continue
            self._loop.call_soon_threadsafe(self._pipeline.attach, work, states)
            self._restored.put(work)
            return

    def _start_restored(self, consumer: Consumer) -> None:
        """Partitions whose state is attached: seek to where they start, let them flow.

        The seek makes the committed offset the start even if librdkafka fetched some records
        between the assignment and the pause (those were dropped in ``_hand_over``)."""
        retry: list[PartitionWork] = []
        while not self._restored.empty():
            work = self._restored.get()
            key = (work.topic, work.partition)
            if work.revoked or self._tracker.get(*key) is not work:
                self._health.restoring.discard(work)  # this assignment's, not a newer one's
                continue
            tp = TopicPartition(work.topic, work.partition)
            try:
                [position] = consumer.committed([tp], timeout=POSITION_TIMEOUT_SECONDS)
                if position.error is not None:  # e.g. the coordinator still loading: not "none"
                    raise KafkaException(position.error)
                committed = position.offset
                low, high = consumer.get_watermark_offsets(tp, timeout=POSITION_TIMEOUT_SECONDS)
                # No committed offset yet (a new group): auto.offset.reset decides.
                start = committed if committed >= 0 else high if self._start_at_end else low
                consumer.seek(TopicPartition(work.topic, work.partition, start))
            except KafkaException as exc:
                log.warning("cannot position %s[%d] yet: %s", *key, exc)
                retry.append(work)
                continue
            # A new group commits where it starts, so that a restart before its first record
            # resumes there instead of applying auto.offset.reset again (with ``latest`` that
            # would skip whatever arrived while it was down).
            work.start_at(start, commit=committed < 0)
            self._health.restoring.discard(work)
        for work in retry:
            self._restored.put(work)

    def _update_caught_up(self, consumer: Consumer) -> None:
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
        for work in self._tracker.all():
            if work.next_offset is None:
                continue
            at_end = self._at_log_end(consumer, work)
            if at_end and not self._told_caught_up.get(work):
                # Becoming caught up without a record saying so: the cached watermark may be
                # from before a pause or a seek, so ask the broker, at most once a second per
                # partition (each ask blocks this thread up to its timeout).
                now = time.monotonic()
                if now - self._live_checked.get(work, -LIVE_CHECK_INTERVAL_SECONDS) < (
                    LIVE_CHECK_INTERVAL_SECONDS
                ):
                    continue
                self._live_checked[work] = now
                at_end = self._at_log_end(consumer, work, live=True)
            if self._told_caught_up.get(work) != at_end:
                self._told_caught_up[work] = at_end
                self._loop.call_soon_threadsafe(self._pipeline.set_caught_up, work, at_end)

    def _at_log_end(self, consumer: Consumer, work: PartitionWork, *, live: bool = False) -> bool:
        """Not paused, and the position at or past the high watermark: the one librdkafka last
        saw (no request), or with ``live`` the broker's (False if it cannot say in time)."""
        if (work.topic, work.partition) in self._paused:
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

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        works = self._release(partitions)
        self._drain(works, self._settings.revoke_timeout_seconds, finish_queued=False)
        self._commit(consumer, works)
        self._loop.call_soon_threadsafe(self._pipeline.detach, works)
        log.info("revoked %s", _names(partitions))

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Ownership is already gone: stop the work, commit nothing."""
        works = self._release(partitions)
        self._drain(works, self._settings.revoke_timeout_seconds, finish_queued=False)
        self._loop.call_soon_threadsafe(self._pipeline.detach, works)
        log.warning("lost %s", _names(partitions))

    def _release(self, partitions: list[TopicPartition]) -> list[PartitionWork]:
        works = []
        for tp in partitions:
            work = self._tracker.revoke(tp.topic, tp.partition)
            if work is not None:
                works.append(work)
            self._paused.discard((tp.topic, tp.partition))
            if work is not None:
                self._health.restoring.discard(work)
                self._told_caught_up.pop(work, None)
                self._live_checked.pop(work, None)
            for series in (metrics.CONSUMER_LAG, metrics.COMMITTED_OFFSET):
                with contextlib.suppress(KeyError):
                    series.remove(tp.topic, str(tp.partition))
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


def backpressure(
    works: list[PartitionWork], paused: set[tuple[str, int]], *, limit: int, circuit_open: bool
) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
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


def _fetch(consumer: Consumer) -> list[Message]:
    """Whatever is fetched, up to a batch, without waiting for a full batch (``consume(n, t)``
    waits until it has n records or t passed, which would add up to t to every record's
    latency on a quiet stream); only an empty fetch waits, for the first record."""
    messages: list[Message] = consumer.consume(FETCH_BATCH, 0)
    if not messages:
        messages = consumer.consume(1, POLL_TIMEOUT_SECONDS)
        if messages:
            messages += consumer.consume(FETCH_BATCH - 1, 0)
    return messages


def _names(partitions: list[TopicPartition]) -> list[str]:
    return [f"{tp.topic}[{tp.partition}]" for tp in partitions]


def _log_error(error: KafkaError) -> None:
    log.warning("kafka: %s", error.str())

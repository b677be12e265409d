"""From fetched records to done offsets: decode → calls → per-fulfillment delivery → done.

Runs on the asyncio loop. The Kafka thread hands over batches with ``accept``; each record
becomes one job on its fulfillment's FIFO, and the record's offset is marked done only when every
call it caused reached a final outcome (2xx or dead letter). Revocation and shutdown go through
``drain``, which stops dispatching a partition and waits, bounded, for its in-flight calls.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Protocol

from consumer import metrics
from consumer.codec import EventDecoder
from consumer.dead_letters import DeadLetters
from consumer.delivery import Deliverer, Outcome, RetryPolicy, sleep_unless
from consumer.dispatch import KeyedDispatcher
from consumer.errors import DecodeError, RedoError
from consumer.model import RedoCall, TrackingEvent
from consumer.offsets import PartitionWork
from consumer.records import RawRecord
from consumer.schema_registry import SchemaRegistryUnavailable

log = logging.getLogger(__name__)


class Processor(Protocol):
    """Turns one decoded scan into the Redo calls it causes, in order."""

    def process(self, event: TrackingEvent) -> Sequence[RedoCall]: ...


class Pipeline:
    def __init__(
        self,
        decoder: EventDecoder,
        processor: Processor,
        deliverer: Deliverer,
        dead_letters: DeadLetters,
        retry: RetryPolicy,
    ) -> None:
        self._decoder = decoder
        self._retry = retry
        self._processor = processor
        self._deliverer = deliverer
        self._dead_letters = dead_letters
        self._dispatcher = KeyedDispatcher()
        self._running: Counter[PartitionWork] = Counter()
        self._progress = asyncio.Condition()

    def accept(self, records: Iterable[RawRecord]) -> None:
        """Queue a fetched batch on the loop, in fetch order: one job per record on the FIFO of
        its key (the fulfillment ID), so decoding, state and calls all happen in key order."""
        for record in records:
            if record.work.revoked:
                continue
            metrics.RECORDS_CONSUMED.labels(topic=record.topic).inc()
            key: Hashable = (
                record.key.decode("utf-8", "replace")
                if record.key
                else ("no-key", record.topic, record.partition)
            )
            self._dispatcher.submit(key, partial(self._run, record))

    async def _run(self, record: RawRecord) -> None:
        """Handle one record, mark it done on a final outcome, and tell ``drain``."""
        work = record.work
        if work.revoked:
            return
        self._running[work] += 1
        try:
            outcome = await self._handle(record)
            if outcome is not None:
                work.done(record.offset)
                metrics.RECORDS_DONE.labels(outcome=outcome).inc()
        finally:
            self._running[work] -= 1
            if not self._running[work]:
                del self._running[work]
            async with self._progress:
                self._progress.notify_all()

    async def _handle(self, record: RawRecord) -> str | None:
        """The record's outcome label, or None when abandoned (revoke, shutdown)."""
        try:
            event = await self._decode(record)
        except DecodeError as exc:
            reason = "missing_key" if not record.key else "decode"
            log.warning("undecodable record: %s", exc, extra=record.context())
            await self._dead_letters.undecodable(record, reason, str(exc))
            return "dead_lettered"
        if event is None:
            return None
        return await self._send_all(record, self._processor.process(event))

    async def _decode(self, record: RawRecord) -> TrackingEvent | None:
        """Decode, retrying while the schema registry is unreachable (the record may be fine)."""
        if not record.key:
            raise DecodeError("record has no key (the key must be the fulfillmentId)")
        if record.value is None:
            raise DecodeError("record has no value")
        value = record.value
        attempt = 0
        while True:
            try:
                event = (
                    self._decoder.decode(value)
                    if attempt == 0
                    else await asyncio.to_thread(self._decoder.decode, value)
                )
                break
            except SchemaRegistryUnavailable as exc:
                delay = self._retry.backoff(attempt)
                log.warning("schema registry unavailable, retrying in %.1fs: %s", delay, exc)
                attempt += 1
                await sleep_unless(delay, lambda: record.work.revoked)
                if record.work.revoked:
                    return None
        if record.key != event.fulfillment_id.encode():
            raise DecodeError("record key does not match the event's fulfillmentId")
        return event

    async def _send_all(self, record: RawRecord, calls: Sequence[RedoCall]) -> str | None:
        """Send the record's calls in order; the record's outcome, or None if abandoned."""
        outcome = "no_call"
        work = record.work
        for call in calls:
            result = await self._deliverer.deliver(
                call,
                abandoned=lambda: work.revoked,
                dead_letter=partial(self._reject, record),
            )
            if result is Outcome.ABANDONED:
                return None
            if result is Outcome.SENT:
                metrics.EVENT_TO_CALL_LATENCY.labels(kind=call.kind.value).observe(
                    max(0.0, (datetime.now(UTC) - call.at).total_seconds())
                )
                outcome = "sent" if outcome == "no_call" else outcome
            else:
                outcome = "dead_lettered"
        return outcome

    async def _reject(self, record: RawRecord, call: RedoCall, exc: RedoError) -> None:
        log.error("Redo refused a call; dead-lettered: %s", exc, extra=record.context())
        await self._dead_letters.rejected_call(record, call, exc)

    async def drain(
        self, works: Sequence[PartitionWork], *, within: float, finish_queued: bool
    ) -> bool:
        """Stop work on ``works`` and wait for it. With ``finish_queued`` (shutdown) queued
        records may still complete ``within`` seconds; otherwise (revoke) only calls already in
        flight finish. True when nothing of theirs is still running."""
        deadline = time.monotonic() + within
        if finish_queued:
            await self._wait(lambda: all(w.buffered == 0 for w in works), deadline)
        for work in works:
            work.revoked = True
        return await self._wait(lambda: not any(self._running[w] for w in works), deadline)

    async def _wait(self, condition: Callable[[], bool], deadline: float) -> bool:
        async with self._progress:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                try:
                    await asyncio.wait_for(self._progress.wait(), remaining)
                except TimeoutError:
                    return bool(condition())
        return True

    async def close(self) -> None:
        await self._dispatcher.cancel_all()

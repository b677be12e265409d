"""From fetched records to done offsets: decode → rules on per-shipment state → calls → done.

Runs on the asyncio loop. The Kafka thread hands over batches with ``accept``, in fetch order.
Each record advances its partition's clock, which may make other shipments' timers due; every
piece of work for a shipment (its scans, its timers) is a job on that shipment's FIFO, so its
state changes and its calls happen one at a time, in order. A record is done — and its offset may
be committed — when every call it caused reached a final outcome (2xx, dead letter, or not sent as
stale news) and its new state was acknowledged by the changelog.

Revocation and shutdown go through ``drain``, which stops dispatching a partition's work and
waits, bounded, for what is in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from consumer.delivery.deliverer import Deliverer, Outcome, RetryPolicy, sleep_unless
from consumer.errors import (
    DecodeError,
    ProduceError,
    RedoError,
    SchemaPending,
    SchemaRegistryUnavailable,
)
from consumer.kafka.dead_letters import DeadLetters, Origin
from consumer.kafka.offsets import PartitionWork
from consumer.kafka.records import RawRecord
from consumer.model import CallKind, RedoCall, TrackingEvent
from consumer.ops import metrics
from consumer.processing.ordering import KeyedDispatcher
from consumer.rules import (
    ForwardPolicy,
    RulesConfig,
    ShipmentState,
    Verdict,
    fire_timers,
    is_stale,
    later,
    process_scan,
)
from consumer.serde.events import EventDecoder
from consumer.state.changelog import Changelog
from consumer.state.packed import RestoredStates
from consumer.state.store import PartitionStore

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
EXPIRY_RECHECK = timedelta(minutes=1)


@dataclass(frozen=True)
class ProcessingSettings:
    rules: RulesConfig
    forward: ForwardPolicy
    max_scan_age: timedelta
    max_clock_skew: timedelta
    max_buffered_per_partition: int


@dataclass(frozen=True, slots=True)
class TimerOrigin:
    """Where a timer-fired call came from, for its dead letter: no input record, only a key."""

    topic: str
    partition: int
    key: bytes
    offset: int = -1


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """A shipment's state before a job touched it, to put back if the job fails."""

    fulfillment_id: str
    state: ShipmentState | None
    offset: int

    @classmethod
    def of(cls, store: PartitionStore, fulfillment_id: str) -> _Snapshot:
        return cls(fulfillment_id, store.get(fulfillment_id), store.offset_of(fulfillment_id))

    def restore(self, store: PartitionStore, *, reschedule: bool = True) -> None:
        store.discard(self.fulfillment_id)
        if self.state is None:
            return
        store.put(self.fulfillment_id, self.state, self.offset)
        if reschedule:
            with contextlib.suppress(Exception):  # it was scheduled with this state before
                store.schedule(self.fulfillment_id)


def _describe(exc: BaseException) -> str:
    """An exception as a dead letter's error header: its type and its message."""
    return f"{type(exc).__name__}: {exc}"


class Pipeline:
    def __init__(
        self,
        decoder: EventDecoder,
        deliverer: Deliverer,
        dead_letters: DeadLetters,
        changelog: Changelog,
        retry: RetryPolicy,
        settings: ProcessingSettings,
        *,
        wall_clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self._decoder = decoder
        self._deliverer = deliverer
        self._dead_letters = dead_letters
        self._changelog = changelog
        self._retry = retry
        self._settings = settings
        self._now = wall_clock
        self._dispatcher = KeyedDispatcher()
        self._stores: dict[PartitionWork, PartitionStore] = {}
        self._running: Counter[PartitionWork] = Counter()
        self._progress = asyncio.Condition()
        self._waiting = 0  # drains waiting on ``_progress``; jobs notify only when some wait
        self.writes_held = 0
        """Kafka writes held by a refusal retrying cannot fix (``/readyz`` reports them)."""
        self.unexpected_failures = 0
        """Failures no contained path caught (``/healthz`` reports them)."""

    # --- partitions -----------------------------------------------------------------------

    def attach(self, work: PartitionWork, restored: RestoredStates) -> None:
        """A partition's state was restored: its records may now be processed."""
        if work.revoked:
            return
        try:
            store = PartitionStore(self._settings.rules, restored)
        except Exception:  # each bad state is quarantined inside; this would be a bug
            self._failed_unexpectedly("attaching a restored partition", work)
            return
        self._stores[work] = store
        for fulfillment_id in restored.rewrite:
            # A former owner's late write landed after this newer state: write the newer one
            # again, or compaction (the key's last record wins) would bring the older back.
            job = self._rewrite(work, store, fulfillment_id)
            self._dispatcher.submit(fulfillment_id, self._tracked(work, None, job))
        for fulfillment_id, offset in restored.rewrite_tombstones.items():
            job = self._rewrite_tombstone(work, fulfillment_id, offset)
            self._dispatcher.submit(fulfillment_id, self._tracked(work, None, job))
        self._update_shipment_gauge()

    def detach(self, works: Iterable[PartitionWork]) -> None:
        for work in works:
            self._stores.pop(work, None)
        self._update_shipment_gauge()

    def _update_shipment_gauge(self) -> None:
        metrics.SHIPMENTS_IN_STATE.set(sum(len(s) for s in self._stores.values()))

    # --- intake ---------------------------------------------------------------------------

    def accept(self, records: Iterable[RawRecord]) -> None:
        """Queue a fetched batch, in fetch order (called on the loop).

        Nothing a record holds may escape from here: whatever goes wrong with one record (its
        bytes, its dates, a bug) dead-letters that record, and the next one is processed."""
        for record in records:
            store = self._stores.get(record.work)
            if record.work.revoked or store is None:
                continue
            record.work.caught_up = record.at_end
            try:
                self._intake(record, store)
            except Exception as exc:
                log.exception("record failed before processing", extra=record.context())
                self._submit_dead_letter(record, "processing_error", _describe(exc))

    def set_caught_up(self, work: PartitionWork, caught_up: bool) -> None:
        """The Kafka thread's verdict, queued behind the records it handed over: caught up once
        the consumer's position reached the log end, no longer once newer records wait unread
        (the partition is paused, or they are not fetched yet)."""
        work.caught_up = caught_up

    def _intake(self, record: RawRecord, store: PartitionStore) -> None:
        if not record.key:
            self._submit_dead_letter(record, "missing_key", "record has no key")
            return
        try:
            event = self._checked(record, self._decoder.decode(record.value or b"", record.headers))
        except SchemaPending as pending:
            # Fetched off the loop inside the shipment's own FIFO: later records of the same
            # shipment queue behind it, so its order is kept while others flow. The clock it
            # will be applied with is the one of this moment, as if it had decoded now.
            floor = store.clock(self._now(), caught_up=record.work.caught_up)
            key = record.key.decode("utf-8", "replace")
            job = self._decode_later(record, pending, floor)
            self._dispatcher.submit(key, self._tracked(record.work, record.offset, job))
            return
        except DecodeError as exc:
            self._submit_dead_letter(record, "decode", str(exc))
            return
        too_far = self._future_error(event)
        if too_far is not None:
            self._submit_dead_letter(record, "future_event_time", too_far)
            return
        store.observe(event.occurred_at)
        clock = store.clock(self._now(), caught_up=record.work.caught_up)
        assert clock is not None  # stream time was just observed
        self._fire_due(record.work, store, clock, skip=event.fulfillment_id)
        job = self._scan(record, store, event, clock)
        self._dispatcher.submit(
            event.fulfillment_id, self._tracked(record.work, record.offset, job)
        )

    def _future_error(self, event: TrackingEvent) -> str | None:
        """Why a scan is dated too far ahead to be believed, or None.

        Past the wall clock plus ``MAX_CLOCK_SKEW`` it is dead-lettered: as the partition's
        stream time it would make every other shipment look stalled or late."""
        limit = later(self._now(), self._settings.max_clock_skew)
        if event.occurred_at <= limit:
            return None
        return (
            f"occurredAt {event.occurred_at.isoformat()} is later than the wall clock plus "
            f"MAX_CLOCK_SKEW ({limit.isoformat()})"
        )

    def tick(self) -> None:
        """Fire the timers of caught-up partitions on the wall clock (called every second)."""
        now = self._now()
        for work, store in list(self._stores.items()):
            clock = store.clock(now, caught_up=work.caught_up)
            if clock is None or work.revoked:
                continue
            try:
                self._fire_due(work, store, clock)
            except Exception:  # the ticker must keep ticking: the next tick tries again
                log.exception("firing timers failed", extra={"partition": work.partition})
        self._update_shipment_gauge()

    def _fire_due(
        self, work: PartitionWork, store: PartitionStore, clock: datetime, skip: str = ""
    ) -> None:
        """Queue the timers due at ``clock``; ``skip``'s own scan job fires its timers itself,
        in the engine's order (before the scan's time, then after applying it).

        Timer jobs count toward the partition's buffer: beyond their share the rest stay due
        (not even taken off the heap) and are queued by a later call, so a clock jump over a
        million deadlines neither queues a million jobs nor re-sorts them on every record."""
        limit = self._settings.max_buffered_per_partition
        # Timer jobs get at most half the buffer, so records always have room to be fetched:
        # a flood of due timers (expiries on a busy partition) must not keep the partition
        # paused and starve the records that move the clock and the commits.
        room = min(limit // 2 - work.timers_queued, limit - work.buffered)
        if room <= 0:
            return
        for fulfillment_id in store.due(clock, limit=room + 1):  # one more: ``skip`` may be in
            if fulfillment_id == skip:
                continue
            if room == 0:
                store.schedule(fulfillment_id)  # still due: the next call takes it
                continue
            room -= 1
            work.timers_queued += 1
            job = self._timers(work, store, fulfillment_id, clock)
            self._dispatcher.submit(fulfillment_id, self._tracked(work, None, job, timer=True))

    def _submit_dead_letter(self, record: RawRecord, reason: str, error: str) -> None:
        log.warning("record dead-lettered (%s): %s", reason, error, extra=record.context())
        # On its shipment's FIFO when it has a key: dead letters of different shipments are
        # written concurrently (one at a time per partition took ~20 ms each, the producer's
        # linger), and one shipment's records still finish in order.
        key: Hashable = (
            record.key.decode("utf-8", "replace")
            if record.key
            else ("dead-letter", record.topic, record.partition)
        )
        job = self._tracked(record.work, record.offset, self._dead_letter(record, reason, error))
        self._dispatcher.submit(key, job)

    async def _dead_letter(self, record: RawRecord, reason: str, error: str) -> str | None:
        written = await self._until_written(
            record.work, lambda: self._dead_letters.record(record, reason, error)
        )
        return "dead_lettered" if written else None

    def _checked(self, record: RawRecord, event: TrackingEvent) -> TrackingEvent:
        if record.key != event.fulfillment_id.encode():
            raise DecodeError("record key does not match the event's fulfillmentId")
        return event

    async def _decode_later(
        self, record: RawRecord, pending: SchemaPending, floor: datetime | None
    ) -> str | None:
        """Fetch the record's writer schema (retried while the registry is unreachable), then
        process the record in this same job, ahead of the shipment's later records."""
        try:
            event = await self._fetch_and_decode(record, pending)
        except DecodeError as exc:
            return await self._dead_letter(record, "decode", str(exc))
        except Exception as exc:
            log.exception("decoding a record failed; dead-lettered", extra=record.context())
            return await self._dead_letter(record, "processing_error", _describe(exc))
        store = self._stores.get(record.work)
        if event is None or store is None or record.work.revoked:
            return None
        too_far = self._future_error(event)
        if too_far is not None:
            return await self._dead_letter(record, "future_event_time", too_far)
        store.observe(event.occurred_at)
        clock = event.occurred_at if floor is None else max(floor, event.occurred_at)
        return await self._scan(record, store, event, clock)

    async def _fetch_and_decode(
        self, record: RawRecord, pending: SchemaPending
    ) -> TrackingEvent | None:
        """The decoded event once its schema is fetched; None when the partition was revoked
        first. ``DecodeError`` when the registry says the schema does not exist."""
        attempt = 0
        while not record.work.revoked:
            try:
                await self._decoder.fetch_schema(pending.reference)
                return self._checked(
                    record, self._decoder.decode(record.value or b"", record.headers)
                )
            except (SchemaRegistryUnavailable, SchemaPending) as exc:
                delay = self._retry.backoff(attempt)
                log.warning("schema registry unavailable, retrying in %.1fs: %s", delay, exc)
                attempt += 1
                await sleep_unless(delay, lambda: record.work.revoked)
        return None

    # --- jobs -----------------------------------------------------------------------------

    def _tracked(
        self,
        work: PartitionWork,
        offset: int | None,
        job: Coroutine[Any, Any, str | None],
        *,
        timer: bool = False,
    ) -> Callable[[], Coroutine[Any, Any, None]]:
        """Wrap a job: skip it once its partition is revoked, count it for ``drain``, and mark
        its record done (when it has one) on a final outcome. A ``timer`` job was counted in
        ``work.timers_queued`` when queued and is uncounted here, whether it ran or not."""

        async def run() -> None:
            if work.revoked:
                job.close()
                if timer:
                    work.timers_queued -= 1
                return
            self._running[work] += 1
            try:
                outcome = await job
                if outcome is not None and offset is not None:
                    work.done(offset)
                    metrics.RECORDS_DONE.labels(outcome=outcome).inc()
            except Exception:
                self._failed_unexpectedly("a job", work)
            finally:
                if timer:
                    work.timers_queued -= 1
                self._running[work] -= 1
                if not self._running[work]:
                    del self._running[work]
                if self._waiting:
                    async with self._progress:
                        self._progress.notify_all()

        return run

    def _failed_unexpectedly(self, what: str, work: PartitionWork) -> None:
        """Something outside every contained path failed (a bug in the containment itself):
        its record stays undone, so nothing is committed past it, and liveness fails, so the
        pod restarts and the record is replayed rather than the partition stalling unseen."""
        self.unexpected_failures += 1
        metrics.UNEXPECTED_FAILURES.inc()
        log.exception(
            "%s failed unexpectedly; its record stays uncommitted and /healthz fails",
            what,
            extra={"partition": work.partition},
        )

    async def _scan(
        self, record: RawRecord, store: PartitionStore, event: TrackingEvent, clock: datetime
    ) -> str | None:
        fulfillment_id = event.fulfillment_id
        before = _Snapshot.of(store, fulfillment_id)
        sent: list[RedoCall] = []
        try:
            transition = process_scan(
                store.get(fulfillment_id),
                event,
                clock=clock,
                config=self._settings.rules,
                forward=self._settings.forward,
            )
            if transition.verdict is Verdict.DUPLICATE:
                metrics.DEDUP_DROPS.inc()
                # Its offset counts: the shipment must not expire before this record is
                # committed, or a replay of it would find no state and start a new one.
                store.put(fulfillment_id, transition.state, record.offset)
                store.schedule(fulfillment_id)
                return "duplicate"
            if transition.verdict is Verdict.OUT_OF_ORDER:
                metrics.OUT_OF_ORDER_SCANS.inc()
            store.put(fulfillment_id, transition.state, record.offset)
            outcome = await self._send_all(record.work, record, transition.calls, sent)
            if outcome is None or not await self._persist(
                record.work, fulfillment_id, transition.state, store.offset_of(fulfillment_id)
            ):
                return None
            store.schedule(fulfillment_id)
        except Exception as exc:
            if not sent:
                before.restore(store)
            # else the new state stays (in memory): it carries the marks of the calls Redo
            # already has, and a terminal status; the old one would repeat or contradict them.
            log.exception("processing a record failed; dead-lettered", extra=record.context())
            return await self._dead_letter(record, "processing_error", _describe(exc))
        return "out_of_order" if transition.verdict is Verdict.OUT_OF_ORDER else outcome

    async def _timers(
        self, work: PartitionWork, store: PartitionStore, fulfillment_id: str, clock: datetime
    ) -> str | None:
        before = _Snapshot.of(store, fulfillment_id)
        origin = TimerOrigin(work.topic, work.partition, fulfillment_id.encode())
        sent: list[RedoCall] = []
        try:
            return await self._run_timers(work, store, fulfillment_id, clock, origin, sent)
        except Exception as exc:
            # The shipment keeps its state (with the marks of calls already sent) and is not
            # rescheduled: its next scan schedules it again, so a timer that cannot run does
            # not fail again every tick.
            if not sent:
                before.restore(store, reschedule=False)
            log.exception(
                "a shipment's timers failed; dead-lettered",
                extra={"fulfillment_id": fulfillment_id, "partition": work.partition},
            )
            error = _describe(exc)
            written = await self._until_written(
                work, lambda: self._dead_letters.failed_timer(origin, "processing_error", error)
            )
            return "dead_lettered" if written else None

    async def _run_timers(
        self,
        work: PartitionWork,
        store: PartitionStore,
        fulfillment_id: str,
        clock: datetime,
        origin: TimerOrigin,
        sent: list[RedoCall],
    ) -> str | None:
        state = store.get(fulfillment_id)
        if state is None:
            return "no_call"
        fired = fire_timers(state, clock=clock, config=self._settings.rules)
        offset = store.offset_of(fulfillment_id)
        store.put(fulfillment_id, fired.state, offset)
        if await self._send_all(work, origin, fired.calls, sent) is None:
            return None
        expired = store.expired(fulfillment_id, clock)
        # Expiry is decided per shipment: once its own records are committed, no replay can
        # bring them back, whatever the rest of the partition is doing.
        if expired and work.committed is not None and work.committed > offset:
            store.discard(fulfillment_id)
            return "expired" if await self._persist(work, fulfillment_id, None, offset) else None
        if fired.calls and not await self._persist(work, fulfillment_id, fired.state, offset):
            return None
        # An expired shipment whose records are not all committed may be replayed after a crash
        # or rebalance; forgetting it now would re-send its calls. Look again a little later.
        store.schedule(fulfillment_id, not_before=later(clock, EXPIRY_RECHECK) if expired else None)
        return "timers"

    async def _rewrite(
        self, work: PartitionWork, store: PartitionStore, fulfillment_id: str
    ) -> str | None:
        state = store.get(fulfillment_id)
        if state is None:
            return "no_call"
        offset = store.offset_of(fulfillment_id)
        return "rewritten" if await self._persist(work, fulfillment_id, state, offset) else None

    async def _rewrite_tombstone(
        self, work: PartitionWork, fulfillment_id: str, offset: int
    ) -> str | None:
        written = await self._persist(work, fulfillment_id, None, offset)
        return "rewritten" if written else None

    async def _persist(
        self, work: PartitionWork, fulfillment_id: str, state: ShipmentState | None, offset: int
    ) -> bool:
        """Write the state (None: a tombstone) to the changelog; False if abandoned."""
        return await self._until_written(
            work,
            lambda: self._changelog.write(work.partition, fulfillment_id, state, offset=offset),
        )

    async def _until_written(
        self, work: PartitionWork, write: Callable[[], Coroutine[Any, Any, None]]
    ) -> bool:
        """Retry a Kafka write the broker did not acknowledge (librdkafka already retried for
        ``message.timeout.ms``) until it succeeds, or the partition is given up (False).

        A refusal that retrying cannot fix by itself (no such topic, not authorised) holds the
        partition visibly: an error log per attempt, ``tracking_kafka_writes_held`` (alerted
        on) and ``/readyz`` false, until an operator fixes it or the partition moves away."""
        attempt = 0
        held: str | None = None
        try:
            while True:  # one attempt even once revoked: what it records is done (e.g. a 2xx)
                try:
                    await write()
                    return True
                except ProduceError as exc:
                    if work.revoked:
                        return False
                    if exc.permanent and held is None:
                        held = exc.topic
                        self.writes_held += 1
                        metrics.KAFKA_WRITES_HELD.labels(topic=held).inc()
                    delay = self._retry.backoff(attempt)
                    log.error(
                        "Kafka write failed, retrying in %.1fs: %s",
                        delay,
                        exc,
                        extra={"partition": work.partition, "held": exc.permanent},
                    )
                    attempt += 1
                    await sleep_unless(delay, lambda: work.revoked)
        finally:
            if held is not None:
                self.writes_held -= 1
                metrics.KAFKA_WRITES_HELD.labels(topic=held).dec()

    async def _send_all(
        self,
        work: PartitionWork,
        origin: Origin,
        calls: Sequence[RedoCall],
        sent: list[RedoCall],
    ) -> str | None:
        """Send calls in order; the outcome label, or None when abandoned (revoke, shutdown).
        Each call Redo got a 2xx for is appended to ``sent`` as it happens."""
        outcome = "no_call"
        for index, call in enumerate(calls):
            if call.kind is CallKind.EVENT:
                metrics.RULE_FIRINGS.labels(rule=call.status).inc()
            if is_stale(call, now=self._now(), max_age=self._settings.max_scan_age):
                metrics.STALE_DROPS.labels(kind=call.kind.value).inc()
                log.info(
                    "not sent: older than MAX_SCAN_AGE",
                    extra={"fulfillment_id": call.fulfillment_id, "call_status": call.status},
                )
                outcome = "stale" if outcome == "no_call" else outcome
                continue
            # A revoke abandons a transition only before its first call: once one went out, the
            # rest get until the drain's deadline, so the new owner does not replay (and re-send)
            # the calls already made.
            result = await self._deliverer.deliver(
                call,
                abandoned=(lambda: work.given_up) if index > 0 else (lambda: work.revoked),
                dead_letter=partial(self._reject, work, origin),
                follow_up=index > 0,
            )
            if result is Outcome.ABANDONED:
                return None
            if result is Outcome.SENT:
                sent.append(call)
                metrics.EVENT_TO_CALL_LATENCY.labels(kind=call.kind.value).observe(
                    max(0.0, (self._now() - call.at).total_seconds())
                )
                outcome = "sent" if outcome in ("no_call", "stale") else outcome
            else:
                outcome = "dead_lettered"
        return outcome

    async def _reject(
        self, work: PartitionWork, origin: Origin, call: RedoCall, exc: RedoError
    ) -> bool:
        """Dead-letter a call Redo refused; False when the write was given up (revoke), so the
        call, and its record, are not done."""
        log.error(
            "Redo refused a call; dead-lettered: %s",
            exc,
            extra={"fulfillment_id": call.fulfillment_id, "partition": origin.partition},
        )
        return await self._until_written(
            work, lambda: self._dead_letters.rejected_call(origin, call, exc)
        )

    # --- revoke and shutdown --------------------------------------------------------------

    async def drain(
        self, works: Sequence[PartitionWork], *, within: float, finish_queued: bool
    ) -> bool:
        """Stop work on ``works`` and wait for it. With ``finish_queued`` (shutdown) queued
        records may still complete ``within`` seconds; otherwise (revoke) only work already in
        flight finishes. True when nothing of theirs is still running."""
        deadline = time.monotonic() + within
        if finish_queued:  # the records; timers fire again from the state after a restart
            await self._wait(lambda: all(w.buffered == w.timers_queued for w in works), deadline)
        for work in works:
            work.revoked = True
        try:
            return await self._wait(lambda: not any(self._running[w] for w in works), deadline)
        finally:
            for work in works:
                work.given_up = True

    async def _wait(self, condition: Callable[[], bool], deadline: float) -> bool:
        self._waiting += 1
        try:
            async with self._progress:
                while not condition():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    try:
                        await asyncio.wait_for(self._progress.wait(), remaining)
                    except TimeoutError:
                        return condition()
            return True
        finally:
            self._waiting -= 1

    async def close(self) -> None:
        await self._dispatcher.cancel_all()

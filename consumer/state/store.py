"""One input partition's shipments, their timers, and the partition clock.

Pure bookkeeping, no I/O: the pipeline asks which shipments have a timer due at a given clock
and runs the rules for them on their own FIFO. The clock is the partition's stream time (the
largest event time seen) while it catches up, and the wall clock once caught up, so a backlog
replay fires exactly the timers a live run would have, and nothing fires merely because the
consumer was behind.

Each shipment's state is kept with the input offset it reflects (the offset of the last record
applied to it). That offset decides when the shipment may expire (only once its own records are
committed, so a replay cannot re-create it) and fences the changelog against late writes of a
former owner (``consumer.state.changelog``).

Memory (README "Per-shipment state"): a shipment is one ``bytes`` per fulfillment ID, its
record: the input offset, its pending deadline, and its state in the changelog's format 2, decoded
on ``get``. A decoded ``ShipmentState`` took 1,187 B, the record takes ~240 B and is not tracked by
the cyclic garbage collector. The most recently used states stay decoded (``HOT_STATES``), so a
scan's get, put, schedule and expiry check decode at most once.

Timers: ``consumer.state.timers``; the record layout: ``consumer.state.packed``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator
from datetime import datetime

from consumer.errors import StateDecodeError
from consumer.ops import metrics
from consumer.rules import RulesConfig, ShipmentState, expires_at
from consumer.state.codec import decode_state, encode_state, to_us
from consumer.state.packed import (
    HEADER,
    NO_OFFSET,
    UNSCHEDULED,
    RestoredStates,
    offset_in,
    pack_record,
    pending_of,
    with_pending,
)
from consumer.state.timers import Timers, deadline_us, rules_tag

log = logging.getLogger(__name__)

HOT_STATES = 8192
"""Decoded states kept per partition (~1.2 KB each, ~10 MB): the shipments scanned lately, so a
scan's get, put, schedule and expiry check decode nothing. With 1,024 the benchmark's 10,000
interleaved shipments missed on almost every get: a decode per event."""


class PartitionStore:
    def __init__(self, config: RulesConfig, restored: RestoredStates | None = None) -> None:
        self._config = config
        restored = restored if restored is not None else RestoredStates()
        self._records = restored.records
        self._timers = restored.timers
        self._hot: OrderedDict[str, ShipmentState] = OrderedDict()
        # Not seeded from the restored states: the changelog runs ahead of the committed offsets
        # (other shipments' later records finished first), so the replay starts the clock.
        self.stream_time: datetime | None = None
        self.quarantined = restored.quarantined
        unscheduled = restored.unscheduled
        if restored.rules_tag != rules_tag(config):  # deadlines computed with other rules
            self._timers = Timers()
            for fulfillment_id, value in self._records.items():
                self._records[fulfillment_id] = with_pending(value, UNSCHEDULED)
            unscheduled = list(self._records)
        for fulfillment_id in unscheduled:
            try:
                self.schedule(fulfillment_id)
            except Exception as exc:  # any state that cannot be scheduled is set aside
                self._quarantine(fulfillment_id, exc)

    # --- shipments ------------------------------------------------------------------------

    def get(self, fulfillment_id: str) -> ShipmentState | None:
        state = self._hot.get(fulfillment_id)
        if state is not None:
            return state
        value = self._records.get(fulfillment_id)
        if value is None:
            return None
        state = decode_state(value, HEADER.size)
        self._remember(fulfillment_id, state)
        return state

    def put(self, fulfillment_id: str, state: ShipmentState, offset: int) -> None:
        """The shipment's new state, reflecting input records up to ``offset``."""
        value = self._records.get(fulfillment_id)
        if value is None:
            known, pending = NO_OFFSET, UNSCHEDULED
        else:
            known, pending = HEADER.unpack_from(value)
            if state is self._hot.get(fulfillment_id) and offset <= known:
                return  # unchanged (a timer run that fired nothing): no need to encode it
        self._records[fulfillment_id] = pack_record(
            max(offset, known), pending, encode_state(state)
        )
        self._remember(fulfillment_id, state)

    def discard(self, fulfillment_id: str) -> None:
        self._records.pop(fulfillment_id, None)
        self._hot.pop(fulfillment_id, None)

    def offset_of(self, fulfillment_id: str) -> int:
        """The input offset the shipment's state reflects (``NO_OFFSET`` when unknown)."""
        value = self._records.get(fulfillment_id)
        return NO_OFFSET if value is None else offset_in(value)

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, fulfillment_id: object) -> bool:
        return fulfillment_id in self._records

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)

    def _remember(self, fulfillment_id: str, state: ShipmentState) -> None:
        # An OrderedDict: evicting a plain dict's first key scans the deleted slots before it,
        # up to thousands per eviction (cProfile: 6 µs per call once the cache was full).
        hot = self._hot
        hot[fulfillment_id] = state
        hot.move_to_end(fulfillment_id)
        if len(hot) > HOT_STATES:
            hot.popitem(last=False)  # the least recently used

    def _quarantine(self, fulfillment_id: str, exc: Exception) -> None:
        """A restored state the rules cannot schedule (e.g. a date at the calendar's edge) or
        that cannot be read: set aside, counted and logged, so one bad record cannot stop the
        partition."""
        self.discard(fulfillment_id)
        self.quarantined += 1
        reason = "unreadable" if isinstance(exc, StateDecodeError) else "unschedulable"
        metrics.STATES_QUARANTINED.labels(reason=reason).inc()
        log.error(
            "restored state set aside: %s: %s",
            "cannot read it" if reason == "unreadable" else "cannot schedule it",
            exc,
            extra={"fulfillment_id": fulfillment_id},
        )

    # --- clock and timers -----------------------------------------------------------------

    def observe(self, event_time: datetime) -> None:
        """A record with this event time was fetched: stream time only moves forward."""
        if self.stream_time is None or event_time > self.stream_time:
            self.stream_time = event_time

    def clock(self, now: datetime, *, caught_up: bool) -> datetime | None:
        """The partition clock: stream time while catching up, the wall clock once caught up
        (never behind stream time, should a carrier's clock run ahead)."""
        if not caught_up:
            return self.stream_time
        return now if self.stream_time is None else max(now, self.stream_time)

    def schedule(self, fulfillment_id: str, *, not_before: datetime | None = None) -> None:
        """(Re)compute the shipment's next deadline after its state changed; ``not_before``
        postpones it (an expiry that must wait for commits)."""
        state = self.get(fulfillment_id)
        if state is None:
            return
        deadline = deadline_us(state, self._config)
        if not_before is not None:
            deadline = max(deadline, to_us(not_before))
        value = self._records[fulfillment_id]
        current = pending_of(value)
        if current == UNSCHEDULED or deadline < current:
            self._records[fulfillment_id] = with_pending(value, deadline)
            self._timers.add(fulfillment_id, deadline)

    def due(self, clock: datetime, limit: int | None = None) -> list[str]:
        """Shipments with a deadline strictly before ``clock``, earliest first, at most
        ``limit``; each is unscheduled until the caller has run its timers and calls
        ``schedule`` again. The rest stay due for the next call."""
        fired: list[str] = []
        if limit is not None and limit <= 0:
            return fired
        records = self._records
        for deadline, fulfillment_id in self._timers.due(to_us(clock), self._pending):
            value = records.get(fulfillment_id)
            if value is not None and pending_of(value) == deadline:
                records[fulfillment_id] = with_pending(value, UNSCHEDULED)
                fired.append(fulfillment_id)
                if len(fired) == limit:
                    break  # the generator stops here: later entries stay on the heap
        return fired

    def _pending(self, fulfillment_id: str) -> int:
        value = self._records.get(fulfillment_id)
        return UNSCHEDULED if value is None else pending_of(value)

    def expired(self, fulfillment_id: str, clock: datetime) -> bool:
        state = self.get(fulfillment_id)
        return state is not None and clock >= expires_at(state, self._config)

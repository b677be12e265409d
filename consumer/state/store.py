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

Timers (``Timers``) are coarse buckets of fulfillment IDs, and an exact heap for the buckets the
clock has reached; an entry whose deadline no longer matches the shipment's pending one is
skipped (lazy deletion). A shipment's next deadline is its earliest rule timer or its expiry.
"""

from __future__ import annotations

import heapq
import inspect
import logging
import struct
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import cast

from consumer.ops import metrics
from consumer.rules import RulesConfig, ShipmentState, engine, expires_at, next_deadline
from consumer.state.codec import NO_DEADLINE, StateDecodeError, decode_state, encode_state, to_us

log = logging.getLogger(__name__)

NO_OFFSET = -1
"""The offset of a state whose input offset is unknown (written before offsets were recorded)."""

UNSCHEDULED = NO_DEADLINE
"""A record's pending deadline while it has none (fired and not yet scheduled again)."""

HOT_STATES = 8192
"""Decoded states kept per partition (~1.2 KB each, ~10 MB): the shipments scanned lately, so a
scan's get, put, schedule and expiry check decode nothing. With 1,024 the benchmark's 10,000
interleaved shipments missed on almost every get: a decode per event."""

_RECORD = struct.Struct("<qq")  # input offset, pending deadline (µs); then the encoded state
_PENDING = struct.Struct("<q")


def deadline_us(state: ShipmentState, config: RulesConfig) -> int:
    """The shipment's next deadline (its earliest rule timer, or its expiry), in µs.
    Raises ``OverflowError`` or ``ValueError`` for a date at the calendar's edge."""
    timer = next_deadline(state, config)
    expiry = expires_at(state, config)
    return to_us(expiry if timer is None else min(timer, expiry))


def rules_tag(config: RulesConfig) -> int:
    """Names the rules that compute deadlines (their thresholds and the engine's code), so a
    deadline written with other rules is recomputed, not trusted. Never 0 ("no deadline")."""
    return zlib.crc32(repr(config).encode(), _engine_crc()) or 1


@cache
def _engine_crc() -> int:
    try:
        return zlib.crc32(inspect.getsource(engine).encode())
    except OSError:  # no source shipped: the thresholds alone name the rules
        return 0


class Timers:
    """Deadlines in buckets of 2**26 µs (67 s) for the future, an exact heap once the clock
    reaches a bucket. A heap entry per shipment took 96 B (tuple, int, list slot); a bucket
    entry takes 8 B, and a bucket (~26 shipments at a million over 30 days) ~150 B."""

    SHIFT = 26

    def __init__(self) -> None:
        self._buckets: dict[int, list[str]] = {}
        self._keys: list[int] = []  # heap of the buckets' keys
        self._near: list[tuple[int, str]] = []
        self._reached = NO_DEADLINE >> self.SHIFT  # buckets up to this one live in _near

    def add(self, fulfillment_id: str, deadline: int) -> None:
        bucket = deadline >> self.SHIFT
        if bucket <= self._reached:
            heapq.heappush(self._near, (deadline, fulfillment_id))
            return
        ids = self._buckets.get(bucket)
        if ids is None:
            ids = self._buckets[bucket] = []
            heapq.heappush(self._keys, bucket)
        ids.append(fulfillment_id)

    def due(self, clock: int, pending: Callable[[str], int]) -> Iterator[tuple[int, str]]:
        """Entries with a deadline strictly before ``clock``, earliest first; ``pending`` gives
        a shipment's current deadline when its bucket moves to the heap (stale ones are
        dropped there)."""
        reached = clock >> self.SHIFT
        while self._keys and self._keys[0] <= reached:
            bucket = heapq.heappop(self._keys)
            for fulfillment_id in self._buckets.pop(bucket):
                deadline = pending(fulfillment_id)
                if deadline >> self.SHIFT == bucket:
                    heapq.heappush(self._near, (deadline, fulfillment_id))
        self._reached = max(self._reached, reached)
        while self._near and self._near[0][0] < clock:
            yield heapq.heappop(self._near)


@dataclass
class RestoredStates:
    """What a changelog restore hands to a ``PartitionStore``.

    ``records``: each shipment's record (see ``PartitionStore``), its pending deadline the one
    the writer computed when ``rules_tag`` names the same rules, else ``UNSCHEDULED`` and the
    shipment is in ``unscheduled``; ``timers`` holds the deadlines already known.
    ``rewrite``: shipments whose newest state was followed in the changelog by an older one (a
    former owner's late write); their state must be written again, so that compaction, which
    keeps the last record of a key, keeps the newest. ``rewrite_tombstones``: the same for
    shipments whose newest record is a tombstone, with its input offset.
    """

    records: dict[str, bytes] = field(default_factory=dict)
    timers: Timers = field(default_factory=Timers)
    unscheduled: list[str] = field(default_factory=list)
    rules_tag: int = 0
    quarantined: int = 0
    rewrite: list[str] = field(default_factory=list)
    rewrite_tombstones: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, states: Mapping[str, ShipmentState], offset: int = NO_OFFSET) -> RestoredStates:
        """States from elsewhere than a changelog (tests, benchmarks), for the store to schedule."""
        records = {
            fid: pack_record(offset, UNSCHEDULED, encode_state(s)) for fid, s in states.items()
        }
        return cls(records, unscheduled=list(records))


def pack_record(offset: int, pending: int, encoded: bytes) -> bytes:
    return _RECORD.pack(offset, pending) + encoded


def with_pending(value: bytes, pending: int) -> bytes:
    return value[:8] + _PENDING.pack(pending) + value[_RECORD.size :]


def pending_of(value: bytes) -> int:
    return cast(int, _PENDING.unpack_from(value, 8)[0])


def offset_in(value: bytes) -> int:
    return cast(int, _PENDING.unpack_from(value)[0])


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
        state = decode_state(value, _RECORD.size)
        self._remember(fulfillment_id, state)
        return state

    def put(self, fulfillment_id: str, state: ShipmentState, offset: int) -> None:
        """The shipment's new state, reflecting input records up to ``offset``."""
        value = self._records.get(fulfillment_id)
        if value is None:
            known, pending = NO_OFFSET, UNSCHEDULED
        else:
            known, pending = _RECORD.unpack_from(value)
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

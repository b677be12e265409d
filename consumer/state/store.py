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

Timers are a heap of (deadline, fulfillment ID) with lazy deletion: ``_scheduled`` holds each
shipment's earliest pending deadline, and a popped entry that no longer matches it is skipped.
A shipment's next deadline is its earliest rule timer or its expiry.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from consumer import metrics
from consumer.rules import RulesConfig, ShipmentState, expires_at, next_deadline

log = logging.getLogger(__name__)

NO_OFFSET = -1
"""The offset of a state whose input offset is unknown (written before offsets were recorded)."""


@dataclass
class RestoredStates:
    """What a changelog restore hands to a ``PartitionStore``.

    ``rewrite``: shipments whose newest state was followed in the changelog by an older one (a
    former owner's late write); their state must be written again, so that compaction, which
    keeps the last record of a key, keeps the newest.
    """

    states: dict[str, ShipmentState] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=dict)
    quarantined: int = 0
    rewrite: list[str] = field(default_factory=list)


class PartitionStore:
    def __init__(self, config: RulesConfig, restored: RestoredStates | None = None) -> None:
        self._config = config
        restored = restored if restored is not None else RestoredStates()
        self._states = restored.states
        self._offsets = restored.offsets
        self._heap: list[tuple[datetime, str]] = []
        self._scheduled: dict[str, datetime] = {}
        # Not seeded from the restored states: the changelog runs ahead of the committed offsets
        # (other shipments' later records finished first), so the replay starts the clock.
        self.stream_time: datetime | None = None
        self.quarantined = restored.quarantined
        for fulfillment_id in list(self._states):
            try:
                self.schedule(fulfillment_id)
            except (OverflowError, ValueError) as exc:
                self._quarantine(fulfillment_id, exc)

    # --- shipments ------------------------------------------------------------------------

    def get(self, fulfillment_id: str) -> ShipmentState | None:
        return self._states.get(fulfillment_id)

    def put(self, fulfillment_id: str, state: ShipmentState, offset: int) -> None:
        """The shipment's new state, reflecting input records up to ``offset``."""
        self._states[fulfillment_id] = state
        self._offsets[fulfillment_id] = max(offset, self._offsets.get(fulfillment_id, NO_OFFSET))

    def discard(self, fulfillment_id: str) -> None:
        self._states.pop(fulfillment_id, None)
        self._offsets.pop(fulfillment_id, None)
        self._scheduled.pop(fulfillment_id, None)

    def offset_of(self, fulfillment_id: str) -> int:
        """The input offset the shipment's state reflects (``NO_OFFSET`` when unknown)."""
        return self._offsets.get(fulfillment_id, NO_OFFSET)

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, fulfillment_id: object) -> bool:
        return fulfillment_id in self._states

    def __iter__(self) -> Iterator[str]:
        return iter(self._states)

    def _quarantine(self, fulfillment_id: str, exc: Exception) -> None:
        """A restored state the rules cannot schedule (e.g. a date at the calendar's edge):
        set aside, counted and logged, so one bad record cannot stop the partition."""
        self.discard(fulfillment_id)
        self.quarantined += 1
        metrics.STATES_QUARANTINED.labels(reason="unschedulable").inc()
        log.error(
            "restored state set aside: cannot schedule it: %s",
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
        state = self._states.get(fulfillment_id)
        if state is None:
            self._scheduled.pop(fulfillment_id, None)
            return
        timer = next_deadline(state, self._config)
        expiry = expires_at(state, self._config)
        deadline = expiry if timer is None else min(timer, expiry)
        if not_before is not None:
            deadline = max(deadline, not_before)
        current = self._scheduled.get(fulfillment_id)
        if current is None or deadline < current:
            self._scheduled[fulfillment_id] = deadline
            heapq.heappush(self._heap, (deadline, fulfillment_id))

    def due(self, clock: datetime) -> list[str]:
        """Shipments with a deadline strictly before ``clock``; each is unscheduled until the
        caller has run its timers and calls ``schedule`` again."""
        fired: list[str] = []
        while self._heap and self._heap[0][0] < clock:
            deadline, fulfillment_id = heapq.heappop(self._heap)
            if self._scheduled.get(fulfillment_id) == deadline:
                del self._scheduled[fulfillment_id]
                fired.append(fulfillment_id)
        return fired

    def expired(self, fulfillment_id: str, clock: datetime) -> bool:
        state = self._states.get(fulfillment_id)
        return state is not None and clock >= expires_at(state, self._config)

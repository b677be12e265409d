"""One input partition's shipments, their timers, and the partition clock (DESIGN §4, §5).

Pure bookkeeping, no I/O: the pipeline asks which shipments have a timer due at a given clock
and runs the rules for them on their own FIFO. The clock is the partition's stream time (the
largest event time seen) while it catches up, and the wall clock once caught up, so a backlog
replay fires exactly the timers a live run would have, and nothing fires merely because the
consumer was behind.

Timers are a heap of (deadline, fulfillment ID) with lazy deletion: ``_scheduled`` holds each
shipment's earliest pending deadline, and a popped entry that no longer matches it is skipped.
A shipment's next deadline is its earliest rule timer or its expiry.
"""

from __future__ import annotations

import heapq
from datetime import datetime

from consumer.rules import RulesConfig, ShipmentState, expires_at, next_deadline


class PartitionStore:
    def __init__(self, config: RulesConfig, states: dict[str, ShipmentState]) -> None:
        self._config = config
        self.states = states
        self._heap: list[tuple[datetime, str]] = []
        self._scheduled: dict[str, datetime] = {}
        # Not seeded from the restored states: the changelog runs ahead of the committed offsets
        # (other shipments' later records finished first), so the replay starts the clock.
        self.stream_time: datetime | None = None
        for fulfillment_id in states:
            self.schedule(fulfillment_id)

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
        state = self.states.get(fulfillment_id)
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
        state = self.states.get(fulfillment_id)
        return state is not None and clock >= expires_at(state, self._config)

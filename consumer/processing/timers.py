"""Timers: which shipments' timers to queue now, within their share of the partition's buffer.

Contract: ``fire_due`` queues a ``TimerJob`` on each due shipment's FIFO, at most as many as the
budget allows; the rest stay on the heap (not even popped) for a later call. ``tick`` does it
for every caught-up partition on the wall clock; a failure there is logged and the next tick
tries again.
"""

from __future__ import annotations

import logging
from datetime import datetime

from consumer.kafka.offsets import PartitionWork
from consumer.processing.jobs import Jobs
from consumer.processing.settings import Clock
from consumer.processing.timer_job import TimerJob
from consumer.state.store import PartitionStore

log = logging.getLogger(__name__)


class Timers:
    def __init__(
        self, job: TimerJob, jobs: Jobs, max_buffered_per_partition: int, wall_clock: Clock
    ) -> None:
        self._job = job
        self._jobs = jobs
        self._limit = max_buffered_per_partition
        self._now = wall_clock

    def tick(self, stores: dict[PartitionWork, PartitionStore]) -> None:
        """Fire the timers of caught-up partitions on the wall clock (called every second)."""
        now = self._now()
        for work, store in list(stores.items()):
            clock = store.clock(now, caught_up=work.caught_up)
            if clock is None or work.revoked:
                continue
            try:
                self.fire_due(work, store, clock)
            except Exception:  # the ticker must keep ticking: the next tick tries again
                log.exception("firing timers failed", extra={"partition": work.partition})

    def fire_due(
        self, work: PartitionWork, store: PartitionStore, clock: datetime, skip: str = ""
    ) -> None:
        """Queue the timers due at ``clock``; ``skip``'s own scan job fires its timers itself,
        in the engine's order (before the scan's time, then after applying it).

        Timer jobs count toward the partition's buffer: beyond their share the rest stay due
        (not even taken off the heap) and are queued by a later call, so a clock jump over a
        million deadlines neither queues a million jobs nor re-sorts them on every record."""
        limit = self._limit
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
            job = self._job.run(work, store, fulfillment_id, clock)
            self._jobs.submit(fulfillment_id, work, None, job, timer=True)

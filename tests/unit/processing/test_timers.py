"""Timers: due timers queued within half the partition's buffer, the rest left on the heap."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from consumer.outcome import Outcome
from consumer.processing.done import Done
from consumer.processing.jobs import Jobs
from consumer.processing.timers import Timers
from consumer.rules import RulesConfig, process_scan
from consumer.state.store import PartitionStore
from tests.unit.processing.fakes import NOW, partition_work, scan

LATER = NOW + timedelta(days=4)


class CountingJob:
    """``TimerJob.run``'s contract; keeps which shipments ran."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    async def run(self, work: object, store: object, fulfillment_id: str, clock: object) -> Outcome:
        self.ran.append(fulfillment_id)
        return Outcome.TIMERS


def _store(shipments: int) -> PartitionStore:
    store = PartitionStore(RulesConfig())
    for number in range(shipments):
        event = scan(f"f{number}", NOW - timedelta(hours=1))
        state = process_scan(None, event, clock=NOW, config=RulesConfig(), forward="all").state
        store.put(f"f{number}", state, number)
        store.schedule(f"f{number}")
    return store


def _timers(limit: int) -> tuple[Timers, CountingJob]:
    job = CountingJob()
    return Timers(job, Jobs(Done()), limit, lambda: LATER), job  # type: ignore[arg-type]


def test_timer_jobs_get_at_most_half_the_buffer_and_the_rest_stay_due() -> None:
    async def run() -> tuple[int, list[str], list[str]]:
        timers, job = _timers(limit=10)
        work, store = partition_work(), _store(50)
        timers.fire_due(work, store, LATER)
        queued = work.timers_queued
        timers.fire_due(work, store, LATER)  # the budget is spent: nothing more is queued
        await asyncio.sleep(0.01)
        return queued, job.ran, store.due(LATER)

    queued, ran, still_due = asyncio.run(run())
    assert queued == 5 and len(ran) == 5
    assert len(still_due) == 45 and not set(ran) & set(still_due)


def test_records_in_the_buffer_shrink_the_timers_room() -> None:
    async def run() -> int:
        timers, _ = _timers(limit=10)
        work, store = partition_work(), _store(50)
        for offset in range(9):
            work.register(offset)
        timers.fire_due(work, store, LATER)
        return work.timers_queued

    assert asyncio.run(run()) == 1


def test_the_scanned_shipment_is_skipped_its_own_job_fires_its_timers() -> None:
    async def run() -> list[str]:
        timers, job = _timers(limit=10)
        work, store = partition_work(), _store(3)
        timers.fire_due(work, store, LATER, skip="f0")
        await asyncio.sleep(0.01)
        return sorted(job.ran)

    assert asyncio.run(run()) == ["f1", "f2"]


def test_tick_fires_only_caught_up_unrevoked_partitions_on_the_wall_clock() -> None:
    async def run() -> list[str]:
        timers, job = _timers(limit=100)
        behind, caught_up, revoked = partition_work(0), partition_work(1), partition_work(2)
        caught_up.caught_up = revoked.caught_up = True
        revoked.revoked = True
        timers.tick({behind: _store(2), caught_up: _store(3), revoked: _store(4)})
        await asyncio.sleep(0.01)
        return sorted(job.ran)

    assert asyncio.run(run()) == ["f0", "f1", "f2"]

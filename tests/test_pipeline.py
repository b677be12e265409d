"""The pipeline's timer and expiry bookkeeping, on the in-memory backend."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from memory_pipeline import MemoryPipeline

from consumer.model import ShipmentStatus, TrackingEvent
from consumer.rules import RulesConfig, Thresholds

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _scan(fulfillment: str, at: datetime) -> TrackingEvent:
    return TrackingEvent(f"{fulfillment}-e", "s", "o", fulfillment, ShipmentStatus.IN_TRANSIT, at)


def test_timer_jobs_count_toward_the_partition_buffer() -> None:
    """200 shipments stall at once on a partition allowed 20 buffered: never more than 20
    timer jobs are queued, and every stall is still reported, over several ticks."""
    limit, shipments = 20, 200

    async def run() -> tuple[MemoryPipeline, int]:
        memory = MemoryPipeline(NOW, max_buffered=limit)
        work = memory.assign()
        scans = [_scan(f"f{n}", NOW - timedelta(hours=1)) for n in range(shipments)]
        memory.pipeline.accept([memory.event_record(work, scan) for scan in scans])
        await memory.settle(work)
        memory.pipeline.set_caught_up(work, True)
        memory.now = NOW + timedelta(days=4)
        peak = 0
        for _ in range(shipments):
            memory.pipeline.tick()
            peak = max(peak, work.timers_queued)
            await memory.settle(work)
            if sum(c.status == "stalled_in_transit" for c in memory.sender.calls) == shipments:
                break
        await memory.pipeline.close()
        return memory, peak

    memory, peak = asyncio.run(run())
    assert peak == limit
    stalled = {c.fulfillment_id for c in memory.sender.calls if c.status == "stalled_in_transit"}
    assert len(stalled) == shipments


def test_a_shipment_expires_once_its_own_records_are_committed() -> None:
    """Expiry is decided per shipment: on a busy partition whose newest records are still in
    flight, a shipment whose own records are committed is forgotten (tombstoned), and one whose
    record is not yet committed waits."""
    rules = RulesConfig(defaults=Thresholds(expire_after_last_scan=timedelta(minutes=1)))

    async def run() -> tuple[MemoryPipeline, list[str], list[str]]:
        memory = MemoryPipeline(NOW, rules=rules)
        work = memory.assign()
        old = [_scan("committed", NOW - timedelta(hours=1)), _scan("recent", NOW)]
        memory.pipeline.accept([memory.event_record(work, scan) for scan in old])
        await memory.settle(work)
        work.committed = 1  # "committed"'s record (offset 0) is committed, "recent"'s is not
        memory.pipeline.set_caught_up(work, True)
        memory.now = NOW + timedelta(minutes=5)
        memory.pipeline.tick()
        await memory.settle(work)
        first = [w.key.decode() for w in memory.states() if w.value is None and w.key]
        work.committed = 2
        memory.now += timedelta(minutes=2)  # past the re-check of a postponed expiry
        memory.pipeline.tick()
        await memory.settle(work)
        second = [w.key.decode() for w in memory.states() if w.value is None and w.key]
        await memory.pipeline.close()
        return memory, first, second

    _, first, second = asyncio.run(run())
    assert first == ["committed"]
    assert second == ["committed", "recent"]

"""The composed processor's timer and expiry bookkeeping, on the in-memory backend."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from confluent_kafka import KafkaError

from consumer.errors import RedoRetryableError
from consumer.kafka.producer import produce_error
from consumer.model import RedoCall, ShipmentStatus, TrackingEvent
from consumer.rules import RulesConfig, Thresholds
from tests.support.memory_pipeline import MemoryPipeline

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _scan(fulfillment: str, at: datetime) -> TrackingEvent:
    return TrackingEvent(f"{fulfillment}-e", "s", "o", fulfillment, ShipmentStatus.IN_TRANSIT, at)


def test_timer_jobs_count_toward_the_partition_buffer() -> None:
    """200 shipments stall at once on a partition allowed 20 buffered: never more than half of
    it (10) in timer jobs is queued, leaving room for records, and every stall is still
    reported, over several ticks."""
    limit, shipments = 20, 200

    async def run() -> tuple[MemoryPipeline, int]:
        memory = MemoryPipeline(NOW, max_buffered=limit)
        work = memory.assign()
        scans = [_scan(f"f{n}", NOW - timedelta(hours=1)) for n in range(shipments)]
        memory.processor.accept([memory.event_record(work, scan) for scan in scans])
        await memory.settle(work)
        memory.processor.set_caught_up(work, True)
        memory.now = NOW + timedelta(days=4)
        peak = 0
        for _ in range(shipments):
            memory.processor.tick()
            peak = max(peak, work.timers_queued)
            await memory.settle(work)
            if sum(c.status == "stalled_in_transit" for c in memory.sender.calls) == shipments:
                break
        await memory.processor.close()
        return memory, peak

    memory, peak = asyncio.run(run())
    assert peak == limit // 2
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
        memory.processor.accept([memory.event_record(work, scan) for scan in old])
        await memory.settle(work)
        work.committed = 1  # "committed"'s record (offset 0) is committed, "recent"'s is not
        memory.processor.set_caught_up(work, True)
        memory.now = NOW + timedelta(minutes=5)
        memory.processor.tick()
        await memory.settle(work)
        first = [w.key.decode() for w in memory.states() if w.value is None and w.key]
        work.committed = 2
        memory.now += timedelta(minutes=2)  # past the re-check of a postponed expiry
        memory.processor.tick()
        await memory.settle(work)
        second = [w.key.decode() for w in memory.states() if w.value is None and w.key]
        await memory.processor.close()
        return memory, first, second

    _, first, second = asyncio.run(run())
    assert first == ["committed"]
    assert second == ["committed", "recent"]


def test_a_revoke_lets_a_started_transition_finish_within_the_drain() -> None:
    """A scan whose status call went out and whose rule event is still being retried (Redo
    answers 503) when the partition is revoked: the event gets until the drain's deadline, so
    the record is done and committed by this owner instead of being replayed, status call and
    all, by the next."""
    first = TrackingEvent(
        "e1",
        "s",
        "o",
        "f",
        ShipmentStatus.IN_TRANSIT,
        NOW - timedelta(hours=2),
        estimated_delivery_date=(NOW + timedelta(days=2)).date(),
    )
    slipped = TrackingEvent(
        "e2",
        "s",
        "o",
        "f",
        ShipmentStatus.IN_TRANSIT,
        NOW - timedelta(hours=1),
        estimated_delivery_date=(NOW + timedelta(days=5)).date(),
    )

    async def run() -> tuple[MemoryPipeline, bool, int | None]:
        memory = MemoryPipeline(NOW)
        refused, redo_back = asyncio.Event(), asyncio.Event()
        send = memory.sender.send

        async def refuse_events_until_back(call: RedoCall) -> None:
            if call.status == "delayed" and not redo_back.is_set():
                refused.set()
                raise RedoRetryableError("503", status_code=503)
            await send(call)

        memory.sender.send = refuse_events_until_back  # type: ignore[method-assign]
        work = memory.assign()
        memory.processor.accept([memory.event_record(work, e) for e in (first, slipped)])
        await asyncio.wait_for(refused.wait(), 5)  # both status calls out, the event retrying
        drained = asyncio.create_task(memory.processor.drain([work], within=5, finish_queued=False))
        await asyncio.sleep(0.1)  # a few retries after the revoke
        redo_back.set()
        finished = await drained
        await memory.processor.close()
        return memory, finished, work.committable

    memory, finished, committable = asyncio.run(run())
    assert finished
    assert committable == 2, "the record whose event was in flight at the revoke is done"
    assert [c.status for c in memory.sender.calls] == ["in_transit", "in_transit", "delayed"]


def test_a_write_held_by_a_permanent_refusal_shows_until_it_is_fixed() -> None:
    """The changelog topic is missing: the record's state write is held (``writes_held``, which
    ``/readyz`` reads) and the record stays undone; once the topic is back, both clear."""
    missing = produce_error("unknown topic", topic="tracking.state", code=KafkaError._UNKNOWN_TOPIC)
    fixed = asyncio.Event()

    def refuse_until_fixed(topic: str, _value: bytes | None) -> None:
        if topic == "tracking.state" and not fixed.is_set():
            raise missing

    async def run() -> tuple[int, int | None, int, int | None]:
        memory = MemoryPipeline(NOW)
        memory.producer.fail = refuse_until_fixed
        work = memory.assign()
        memory.processor.accept([memory.event_record(work, _scan("f", NOW))])
        deadline = asyncio.get_running_loop().time() + 5
        while not memory.processor.writes_held:
            assert asyncio.get_running_loop().time() < deadline, "the held write went unseen"
            await asyncio.sleep(0.005)
        held, undone = memory.processor.writes_held, work.committable
        fixed.set()
        await memory.settle(work)
        await memory.processor.close()
        return held, undone, memory.processor.writes_held, work.committable

    assert asyncio.run(run()) == (1, None, 0, 1)

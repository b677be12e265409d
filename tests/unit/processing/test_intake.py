"""Intake: each record leaves as exactly one job on its shipment's FIFO, or a dead letter."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, cast

import pytest

from consumer.kafka.offsets import PartitionWork
from consumer.kafka.records import RawRecord
from consumer.model import TrackingEvent
from consumer.processing.decode import Decode
from consumer.processing.intake import Intake
from consumer.processing.pending import PendingSchema
from consumer.processing.scan import Scan
from consumer.processing.timer_job import TimerJob
from consumer.processing.timers import Timers
from consumer.rules import RulesConfig
from consumer.serde.events import RawDecoder
from consumer.state.changelog import OFFSET_HEADER
from consumer.state.store import PartitionStore
from devkit.encoding import encode_raw
from tests.unit.processing.fakes import (
    FAST,
    NOW,
    SETTINGS,
    Chain,
    partition_work,
    raw,
    scan,
    scan_record,
    until,
)
from tests.unit.processing.test_decode import FlakyRegistry


def _intake(
    chain: Chain, decoder: object = None
) -> tuple[Intake, dict[PartitionWork, PartitionStore]]:
    stores: dict[PartitionWork, PartitionStore] = {}
    decode = Decode(cast(Any, decoder or RawDecoder()), FAST, timedelta(minutes=5), lambda: NOW)
    scan_stage = Scan(SETTINGS, chain.deliver, chain.persist, chain.dead_letter)
    timer_job = TimerJob(SETTINGS.rules, chain.deliver, chain.persist, chain.dead_letter)
    intake = Intake(
        stores,
        decode,
        timers=Timers(timer_job, chain.jobs, SETTINGS.max_buffered_per_partition, lambda: NOW),
        scan=scan_stage,
        pending=PendingSchema(decode, stores, scan_stage, chain.dead_letter),
        dead_letter=chain.dead_letter,
        jobs=chain.jobs,
        wall_clock=lambda: NOW,
    )
    return intake, stores


def _accept(chain: Chain, records: Sequence[RawRecord], decoder: object = None) -> PartitionWork:
    work = records[0].work

    async def run() -> None:
        intake, stores = _intake(chain, decoder)
        stores[work] = PartitionStore(RulesConfig())
        intake.accept(records)
        await until(lambda: work.committable == len(records))

    asyncio.run(run())
    return work


def test_a_scan_goes_on_to_its_call_and_is_done() -> None:
    chain, work = Chain(), partition_work()
    _accept(chain, [scan_record(work, 0, scan("f1", NOW - timedelta(hours=1)))])
    assert [status for status, _, _ in chain.deliverer.seen] == ["in_transit"]
    assert chain.dead_letters() == []


def test_records_that_cannot_be_believed_are_dead_lettered_each_with_its_reason() -> None:
    chain, work = Chain(), partition_work()
    future = scan("f3", NOW + timedelta(days=1))
    records = [
        raw(work, 0, None, b"x"),
        raw(work, 1, b"f2", b"\xff\xff"),
        scan_record(work, 2, future),
        raw(work, 3, b"other", encode_raw(scan("f4", NOW))),
    ]
    _accept(chain, records)
    assert chain.reasons() == ["missing_key", "decode", "future_event_time", "decode"]
    assert chain.deliverer.seen == []


def test_a_bug_on_one_record_costs_that_record_only(monkeypatch: pytest.MonkeyPatch) -> None:
    chain, work = Chain(), partition_work()
    real = Decode.event

    def breaks_on_f1(self: Decode, record: RawRecord) -> TrackingEvent:
        if record.key == b"f1":
            raise KeyError("bug")
        return real(self, record)

    monkeypatch.setattr(Decode, "event", breaks_on_f1)
    records = [scan_record(work, 0, scan("f1", NOW)), scan_record(work, 1, scan("f2", NOW))]
    _accept(chain, records)
    assert chain.reasons() == ["processing_error"]
    assert len(chain.deliverer.seen) == 1


def test_a_pending_schema_keeps_the_shipments_order() -> None:
    """The first record waits for its schema through registry outages; the second, of the same
    shipment (pending too when it arrived), queues behind it, so the shipment's states are
    still written in offset order."""
    chain, work = Chain(), partition_work()
    first = scan("f1", NOW - timedelta(hours=2), event_id="e1")
    second = scan("f1", NOW - timedelta(hours=1), event_id="e2")
    registry = FlakyRegistry(outages=3)
    _accept(chain, [scan_record(work, 0, first), scan_record(work, 1, second)], registry)
    assert registry.fetches == 5, "four for the first, then one for the second"
    assert [w.headers[OFFSET_HEADER] for w in chain.states()] == [b"0", b"1"]


def test_records_of_unattached_or_revoked_partitions_are_skipped() -> None:
    async def run() -> tuple[int | None, int | None]:
        chain = Chain()
        intake, stores = _intake(chain)
        revoked, unattached = partition_work(0), partition_work(1)
        stores[revoked] = PartitionStore(RulesConfig())
        revoked.revoked = True
        intake.accept([scan_record(revoked, 0, scan("f1", NOW))])
        intake.accept([scan_record(unattached, 0, scan("f1", NOW))])
        await asyncio.sleep(0.01)
        return revoked.committable, unattached.committable

    assert asyncio.run(run()) == (None, None)


def test_a_record_moves_its_partitions_clock_and_fires_other_shipments_timers() -> None:
    async def run() -> tuple[Chain, PartitionWork]:
        chain = Chain()
        intake, stores = _intake(chain)
        work = partition_work()
        stores[work] = PartitionStore(RulesConfig())
        intake.accept([scan_record(work, 0, scan("old", NOW - timedelta(days=5)))])
        await until(lambda: work.committable == 1)
        last = raw(work, 1, b"new", encode_raw(scan("new", NOW)), at_end=True)
        intake.accept([last])
        await until(lambda: work.committable == 2 and len(chain.deliverer.seen) == 3)
        return chain, work

    chain, work = asyncio.run(run())
    assert work.caught_up, "the record fetched at the log end says so"
    assert sorted(status for status, _, _ in chain.deliverer.seen) == [
        "in_transit",
        "in_transit",
        "stalled_in_transit",
    ]

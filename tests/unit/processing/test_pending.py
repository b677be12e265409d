"""PendingSchema: a record decoded once its schema is fetched, then scanned at the right clock."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from consumer.errors import SchemaPending, SchemaRegistryError
from consumer.kafka.offsets import PartitionWork
from consumer.kafka.records import RawRecord
from consumer.model import TrackingEvent
from consumer.outcome import Outcome
from consumer.processing.decode import Decode
from consumer.processing.pending import PendingSchema
from consumer.rules import RulesConfig
from consumer.state.store import PartitionStore
from devkit.encoding import encode_raw
from tests.unit.processing.fakes import FAST, NOW, Chain, partition_work, raw, scan
from tests.unit.processing.test_decode import REFERENCE, FlakyRegistry


@dataclass
class RecordingScan:
    """``Scan.run``'s contract; keeps the clock each event was handed over with."""

    clocks: list[datetime] = field(default_factory=list)

    async def run(
        self, record: RawRecord, store: PartitionStore, event: TrackingEvent, clock: datetime
    ) -> Outcome:
        self.clocks.append(clock)
        return Outcome.SENT


def _stage(
    chain: Chain, decoder: object, work: PartitionWork
) -> tuple[PendingSchema, RecordingScan, PartitionStore]:
    store = PartitionStore(RulesConfig())
    scanned = RecordingScan()
    decode = Decode(cast(Any, decoder), FAST, timedelta(minutes=5), lambda: NOW)
    stage = PendingSchema(decode, {work: store}, cast(Any, scanned), chain.dead_letter)
    return stage, scanned, store


def test_a_fetched_record_is_scanned_no_earlier_than_the_clock_it_arrived_at() -> None:
    chain, work = Chain(), partition_work()
    stage, scanned, store = _stage(chain, FlakyRegistry(outages=1), work)
    early = scan("f1", NOW - timedelta(hours=2))
    record = raw(work, 0, b"f1", encode_raw(early))
    floor = NOW - timedelta(hours=1)
    assert asyncio.run(stage.run(record, SchemaPending(REFERENCE), floor)) is Outcome.SENT
    assert scanned.clocks == [floor]
    assert store.stream_time == early.occurred_at
    assert asyncio.run(stage.run(record, SchemaPending(REFERENCE), None)) is Outcome.SENT
    assert scanned.clocks[-1] == early.occurred_at


def test_a_schema_the_registry_does_not_have_dead_letters_the_record_as_decode() -> None:
    class Missing(FlakyRegistry):
        async def fetch_schema(self, reference: object) -> None:
            raise SchemaRegistryError("no such schema")

    chain, work = Chain(), partition_work()
    stage, scanned, _ = _stage(chain, Missing(), work)
    record = raw(work, 0, b"f1", encode_raw(scan("f1", NOW)))
    assert asyncio.run(stage.run(record, SchemaPending(REFERENCE), None)) is Outcome.DEAD_LETTERED
    assert chain.reasons() == ["decode"] and scanned.clocks == []


def test_a_scan_from_the_future_is_dead_lettered_after_the_fetch() -> None:
    chain, work = Chain(), partition_work()
    stage, scanned, store = _stage(chain, FlakyRegistry(), work)
    record = raw(work, 0, b"f1", encode_raw(scan("f1", NOW + timedelta(days=1))))
    assert asyncio.run(stage.run(record, SchemaPending(REFERENCE), None)) is Outcome.DEAD_LETTERED
    assert chain.reasons() == ["future_event_time"] and scanned.clocks == []
    assert store.stream_time is None, "it did not move the clock"


def test_any_other_failure_dead_letters_the_record_as_a_processing_error() -> None:
    class Broken(FlakyRegistry):
        async def fetch_schema(self, reference: object) -> None:
            raise KeyError("bug")

    chain, work = Chain(), partition_work()
    stage, _, _ = _stage(chain, Broken(), work)
    record = raw(work, 0, b"f1", encode_raw(scan("f1", NOW)))
    assert asyncio.run(stage.run(record, SchemaPending(REFERENCE), None)) is Outcome.DEAD_LETTERED
    assert chain.reasons() == ["processing_error"]


def test_a_partition_revoked_or_detached_meanwhile_abandons_the_record() -> None:
    chain, work = Chain(), partition_work()
    stage, scanned, _ = _stage(chain, FlakyRegistry(), work)
    other = partition_work(1)
    record = raw(other, 0, b"f1", encode_raw(scan("f1", NOW)))
    assert asyncio.run(stage.run(record, SchemaPending(REFERENCE), None)) is Outcome.ABANDONED
    assert scanned.clocks == [] and chain.dead_letters() == []

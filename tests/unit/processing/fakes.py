"""In-memory fakes and builders shared by the stage tests: no broker, no HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from confluent_kafka import KafkaError

from consumer.delivery.deliverer import Deliverer
from consumer.delivery.retry import RetryPolicy
from consumer.errors import ProduceError, RedoRejectedError
from consumer.kafka.dead_letters import DeadLetters
from consumer.kafka.offsets import PartitionWork
from consumer.kafka.producer import produce_error
from consumer.kafka.records import RawRecord
from consumer.model import CallKind, RedoCall, ShipmentStatus, TrackingEvent
from consumer.outcome import Outcome
from consumer.processing.dead_letter import DeadLetter
from consumer.processing.deliver import Deliver
from consumer.processing.done import Done
from consumer.processing.jobs import Jobs
from consumer.processing.persist import Persist
from consumer.processing.settings import ProcessingSettings
from consumer.processing.writes import KafkaWrites
from consumer.rules import RulesConfig
from consumer.state.changelog import Changelog
from devkit.encoding import encode_raw
from tests.support.memory_pipeline import (
    DEAD_LETTER_TOPIC,
    STATE_TOPIC,
    MemoryProducer,
    Written,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
FAST = RetryPolicy(initial_seconds=0.001, max_seconds=0.001)
SETTINGS = ProcessingSettings(RulesConfig(), "all", timedelta(0), timedelta(minutes=5), 100)
REFUSED = ProduceError("refused", topic=STATE_TOPIC)
NO_TOPIC = produce_error("unknown topic", topic=STATE_TOPIC, code=KafkaError.UNKNOWN_TOPIC_OR_PART)


def partition_work(partition: int = 0) -> PartitionWork:
    work = PartitionWork("tracking", partition)
    work.next_offset = 0
    work.committed = 0
    return work


def raw(
    work: PartitionWork,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    *,
    at_end: bool = False,
) -> RawRecord:
    work.register(offset)
    return RawRecord("tracking", work.partition, offset, key, value, (), work, at_end=at_end)


def scan(
    fulfillment: str,
    at: datetime,
    *,
    event_id: str = "e1",
    status: ShipmentStatus = ShipmentStatus.IN_TRANSIT,
) -> TrackingEvent:
    return TrackingEvent(event_id, "s", "o", fulfillment, status, at)


def scan_record(work: PartitionWork, offset: int, event: TrackingEvent) -> RawRecord:
    return raw(work, offset, event.fulfillment_id.encode(), encode_raw(event))


def call(
    status: str = "in_transit", *, at: datetime = NOW, kind: CallKind = CallKind.STATUS
) -> RedoCall:
    return RedoCall(kind, "s", "o", "f1", status, at)


@dataclass
class FakeDeliverer:
    """``Deliverer.deliver``'s contract: each call's answer by its status (default: sent)."""

    answers: dict[str, Outcome] = field(default_factory=dict)
    seen: list[tuple[str, bool, bool]] = field(default_factory=list)
    """(status, follow_up, abandoned() when asked) of every call, in order."""

    async def deliver(
        self,
        call: RedoCall,
        *,
        abandoned: Callable[[], bool],
        dead_letter: Callable[[RedoCall, RedoRejectedError], Any],
        follow_up: bool = False,
    ) -> Outcome:
        await asyncio.sleep(0)
        self.seen.append((call.status, follow_up, abandoned()))
        answer = self.answers.get(call.status, Outcome.SENT)
        if answer is Outcome.DEAD_LETTERED:
            refused = RedoRejectedError("400", status_code=400, body="bad")
            return Outcome.DEAD_LETTERED if await dead_letter(call, refused) else Outcome.ABANDONED
        return answer


@dataclass
class Chain:
    """The stages below intake, wired as ``Processor`` wires them, on in-memory edges."""

    producer: MemoryProducer = field(default_factory=MemoryProducer)
    deliverer: FakeDeliverer = field(default_factory=FakeDeliverer)
    settings: ProcessingSettings = SETTINGS
    now: datetime = NOW

    def __post_init__(self) -> None:
        self.done = Done()
        self.jobs = Jobs(self.done)
        self.writes = KafkaWrites(FAST)
        self.dead_letter = DeadLetter(
            DeadLetters(cast(Any, self.producer), DEAD_LETTER_TOPIC), self.writes, self.jobs
        )
        self.deliver = Deliver(
            cast(Deliverer, self.deliverer), self.dead_letter, self.settings, lambda: self.now
        )
        self.persist = Persist(Changelog(STATE_TOPIC, cast(Any, self.producer), {}), self.writes)

    def dead_letters(self) -> list[Written]:
        return self.producer.on(DEAD_LETTER_TOPIC)

    def reasons(self) -> list[str]:
        return [w.headers["dlq.reason"].decode() for w in self.dead_letters()]

    def states(self) -> list[Written]:
        return self.producer.on(STATE_TOPIC)


def fail_times(times: int, error: Exception = REFUSED) -> Callable[[str, bytes | None], None]:
    """A ``MemoryProducer.fail`` that refuses the first ``times`` writes."""
    left = [times]

    def fail(_topic: str, _value: bytes | None) -> None:
        if left[0] > 0:
            left[0] -= 1
            raise error

    return fail


async def until(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Let jobs run until ``condition`` holds (bounded)."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.001)

"""The real ``Processor`` on an in-memory backend: no broker, no HTTP server.

Kafka writes (dead letters, changelog) land in a list instead of a broker, Redo calls in another
after their path and body were checked against Redo's own request schema, so a test can feed
``RawRecord``s and read back exactly what each one caused. Everything between those edges is
the production code: decoder, dispatcher, rules, timers, state codec, payload, retry policy.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import unquote

from pydantic import SecretStr

from consumer.delivery.deliverer import Deliverer
from consumer.delivery.retry import RetryPolicy
from consumer.kafka.dead_letters import DeadLetters
from consumer.kafka.offsets import PartitionWork
from consumer.kafka.records import RawRecord
from consumer.model import RedoCall, TrackingEvent
from consumer.processing.processor import Processor
from consumer.processing.settings import ProcessingSettings
from consumer.redo.payload import request_body, request_path
from consumer.redo.secrets import SecretProvider
from consumer.rules import RulesConfig
from consumer.serde.events import RawDecoder
from consumer.signals import Signals
from consumer.state.changelog import Changelog
from consumer.state.packed import RestoredStates
from devkit.encoding import encode_raw
from devkit.sandbox.schema import REQUEST, first_error

INPUT_TOPIC = "tracking"
DEAD_LETTER_TOPIC = "tracking.dlq"
STATE_TOPIC = "tracking.state"
FAST_RETRY = RetryPolicy(initial_seconds=0.001, max_seconds=0.01, not_found_window_seconds=0.05)
SETTLE_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Written:
    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None
    headers: dict[str, bytes]


@dataclass
class MemoryProducer:
    """``AsyncProducer``'s interface; ``fail`` may raise to simulate a broker refusal."""

    written: list[Written] = field(default_factory=list)
    fail: Callable[[str, bytes | None], None] = lambda _topic, _value: None

    async def produce(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        partition: int | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        await asyncio.sleep(0)
        self.fail(topic, value)
        self.written.append(Written(topic, key, value, partition, dict(headers)))

    def on(self, topic: str) -> list[Written]:
        return [w for w in self.written if w.topic == topic]


@dataclass
class CheckingSender:
    """Redo's side: each call's path must round-trip its IDs and its body must satisfy the
    request schema, or the test fails; accepted calls are kept in order."""

    calls: list[RedoCall] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)

    async def send(self, call: RedoCall) -> None:
        await asyncio.sleep(0)
        segments = request_path(call).split("/")
        ids = [unquote(segments[i]) for i in (2, 4, 6)]
        if ids != [call.store_id, call.order_id, call.fulfillment_id] or len(segments) != 8:
            self.invalid.append(f"path {request_path(call)!r} does not keep the IDs")
        body = json.loads(json.dumps(request_body(call)))
        error = first_error(REQUEST, body)
        if error is not None:
            self.invalid.append(f"{call.fulfillment_id!r}: {error}")
        self.calls.append(call)


class MemoryPipeline:
    """The production ``Processor`` and its stages, with Kafka and Redo in memory."""

    def __init__(
        self,
        now: datetime,
        *,
        rules: RulesConfig | None = None,
        max_scan_age: timedelta = timedelta(0),
        max_clock_skew: timedelta = timedelta(minutes=5),
        max_buffered: int = 10_000,
    ) -> None:
        self.now = now
        self.producer = MemoryProducer()
        self.sender = CheckingSender()
        deliverer = Deliverer(
            self.sender,
            SecretProvider(secret=SecretStr("memory-secret")),
            FAST_RETRY,
            max_in_flight=8,
            signals=Signals(),
        )
        self.processor = Processor(
            RawDecoder(),
            deliverer,
            DeadLetters(self.producer, DEAD_LETTER_TOPIC),  # type: ignore[arg-type]
            Changelog(STATE_TOPIC, self.producer, {}),  # type: ignore[arg-type]
            FAST_RETRY,
            ProcessingSettings(
                rules or RulesConfig(),
                "all",
                max_scan_age,
                max_clock_skew,
                max_buffered,
            ),
            wall_clock=lambda: self.now,
        )
        self._next_offset = 0

    def assign(self, partition: int = 0, restored: RestoredStates | None = None) -> PartitionWork:
        work = PartitionWork(INPUT_TOPIC, partition)
        work.next_offset = 0
        work.committed = 0
        self.processor.attach(work, restored or RestoredStates())
        return work

    def record(
        self, work: PartitionWork, value: bytes | None, key: bytes | None, *, at_end: bool = False
    ) -> RawRecord:
        offset = self._next_offset
        self._next_offset += 1
        work.register(offset)
        return RawRecord(INPUT_TOPIC, work.partition, offset, key, value, (), work, at_end=at_end)

    def event_record(self, work: PartitionWork, event: TrackingEvent) -> RawRecord:
        return self.record(work, encode_raw(event), event.fulfillment_id.encode())

    async def settle(self, work: PartitionWork) -> None:
        """Wait, bounded, until every record and timer job of ``work`` is done."""
        deadline = asyncio.get_running_loop().time() + SETTLE_TIMEOUT_S
        while work.buffered:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"{work.buffered} record(s)/timer(s) still not done after "
                    f"{SETTLE_TIMEOUT_S:.0f}s; committable={work.committable}"
                )
            await asyncio.sleep(0.005)

    def dead_letters(self) -> list[Written]:
        return self.producer.on(DEAD_LETTER_TOPIC)

    def dead_letter_reasons(self) -> dict[int, str]:
        """Source offset → reason, for dead letters of input records."""
        return {
            int(w.headers["dlq.source.offset"]): w.headers["dlq.reason"].decode()
            for w in self.dead_letters()
            if int(w.headers["dlq.source.offset"]) >= 0
        }

    def states(self) -> list[Written]:
        return self.producer.on(STATE_TOPIC)

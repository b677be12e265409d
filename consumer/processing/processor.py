"""From fetched records to done offsets: the processing stages, composed.

Runs on the asyncio loop. The Kafka thread hands over batches with ``accept``, in fetch order.
A record moves forward through the stages and comes back to none it has left:

    Intake (Decode) → Jobs (its shipment's FIFO) → Scan (rules on state) → Deliver → Persist
    → Done

Each record advances its partition's clock, which may make other shipments' timers due
(``Timers``, which queue a ``TimerJob`` on each one's FIFO: rules → Deliver → Persist → Done).
Every piece of work for a shipment is a job on that shipment's FIFO, so its state changes and
its calls happen one at a time, in order. A record is done — and its offset may be committed —
when every call it caused reached a final outcome (2xx, dead letter, or not sent as stale news)
and its new state was acknowledged by the changelog.

Revocation and shutdown go through ``drain``, which stops dispatching a partition's work and
waits, bounded, for what is in flight.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from consumer.delivery.deliverer import Deliverer
from consumer.delivery.retry import RetryPolicy
from consumer.kafka.dead_letters import DeadLetters
from consumer.kafka.offsets import PartitionWork
from consumer.kafka.records import RawRecord
from consumer.processing.dead_letter import DeadLetter
from consumer.processing.decode import Decode
from consumer.processing.deliver import Deliver
from consumer.processing.done import Done
from consumer.processing.intake import Intake
from consumer.processing.jobs import Jobs
from consumer.processing.partitions import Partitions
from consumer.processing.pending import PendingSchema
from consumer.processing.persist import Persist
from consumer.processing.scan import Scan
from consumer.processing.settings import Clock, ProcessingSettings
from consumer.processing.timer_job import TimerJob
from consumer.processing.timers import Timers
from consumer.processing.writes import KafkaWrites
from consumer.serde.events import EventDecoder
from consumer.state.changelog import Changelog
from consumer.state.packed import RestoredStates


class Processor:
    """What the wiring and the Kafka side call; each call goes to the one stage it concerns."""

    def __init__(
        self,
        decoder: EventDecoder,
        deliverer: Deliverer,
        dead_letters: DeadLetters,
        changelog: Changelog,
        retry: RetryPolicy,
        settings: ProcessingSettings,
        *,
        wall_clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self._done = Done()
        self._jobs = Jobs(self._done)
        self._writes = KafkaWrites(retry)
        dead_letter = DeadLetter(dead_letters, self._writes, self._jobs)
        deliver = Deliver(deliverer, dead_letter, settings, wall_clock)
        persist = Persist(changelog, self._writes)
        self._partitions = Partitions(settings.rules, persist, self._jobs, self._done)
        decode = Decode(decoder, retry, settings.max_clock_skew, wall_clock)
        scan = Scan(settings, deliver, persist, dead_letter)
        timer_job = TimerJob(settings.rules, deliver, persist, dead_letter)
        self._timers = Timers(
            timer_job, self._jobs, settings.max_buffered_per_partition, wall_clock
        )
        self._intake = Intake(
            self._partitions.stores,
            decode,
            timers=self._timers,
            scan=scan,
            pending=PendingSchema(decode, self._partitions.stores, scan, dead_letter),
            dead_letter=dead_letter,
            jobs=self._jobs,
            wall_clock=wall_clock,
        )

    @property
    def writes_held(self) -> int:
        """Kafka writes held by a refusal retrying cannot fix (``/readyz`` reports them)."""
        return self._writes.writes_held

    @property
    def unexpected_failures(self) -> int:
        """Failures no contained path caught (``/healthz`` reports them)."""
        return self._done.unexpected_failures

    def attach(self, work: PartitionWork, restored: RestoredStates) -> None:
        self._partitions.attach(work, restored)

    def detach(self, works: Iterable[PartitionWork]) -> None:
        self._partitions.detach(works)

    def accept(self, records: Iterable[RawRecord]) -> None:
        self._intake.accept(records)

    def set_caught_up(self, work: PartitionWork, caught_up: bool) -> None:
        """The Kafka thread's verdict, queued behind the records it handed over: caught up once
        the consumer's position reached the log end, no longer once newer records wait unread
        (the partition is paused, or they are not fetched yet)."""
        work.caught_up = caught_up

    def tick(self) -> None:
        self._timers.tick(self._partitions.stores)
        self._partitions.update_gauge()

    async def drain(
        self, works: Sequence[PartitionWork], *, within: float, finish_queued: bool
    ) -> bool:
        return await self._jobs.drain(works, within=within, finish_queued=finish_queued)

    async def close(self) -> None:
        await self._jobs.close()

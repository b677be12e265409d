"""Dead letters: a record, a timer or a refused call that no retry can fix, kept for people.

Contract: each method writes its dead letter with ``KafkaWrites.until_written`` and tells
whether it was written: ``DEAD_LETTERED`` (the record is done) or ``ABANDONED`` / False (given
up on revoke: not done). ``submit`` queues a record's dead letter on its shipment's FIFO, so a
shipment's records still finish in order. A failure other than a broker refusal is raised: it
is outside every contained path.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable

from consumer.errors import RedoError
from consumer.kafka.dead_letters import DeadLetters, Origin
from consumer.kafka.offsets import PartitionWork
from consumer.kafka.records import RawRecord
from consumer.model import RedoCall
from consumer.outcome import Outcome
from consumer.processing.jobs import Jobs
from consumer.processing.writes import KafkaWrites

log = logging.getLogger(__name__)


def describe(exc: BaseException) -> str:
    """An exception as a dead letter's error header: its type and its message."""
    return f"{type(exc).__name__}: {exc}"


class DeadLetter:
    def __init__(self, dead_letters: DeadLetters, writes: KafkaWrites, jobs: Jobs) -> None:
        self._dead_letters = dead_letters
        self._writes = writes
        self._jobs = jobs

    def submit(self, record: RawRecord, reason: str, error: str) -> None:
        """Dead-letter a record that goes no further than intake."""
        log.warning("record dead-lettered (%s): %s", reason, error, extra=record.context())
        # On its shipment's FIFO when it has a key: dead letters of different shipments are
        # written concurrently (one at a time per partition took ~20 ms each, the producer's
        # linger), and one shipment's records still finish in order.
        key: Hashable = (
            record.key.decode("utf-8", "replace")
            if record.key
            else ("dead-letter", record.topic, record.partition)
        )
        self._jobs.submit(key, record.work, record.offset, self.record(record, reason, error))

    async def record(self, record: RawRecord, reason: str, error: str) -> Outcome:
        written = await self._writes.until_written(
            record.work, lambda: self._dead_letters.record(record, reason, error)
        )
        return Outcome.DEAD_LETTERED if written else Outcome.ABANDONED

    async def timer(self, work: PartitionWork, origin: Origin, error: str) -> Outcome:
        written = await self._writes.until_written(
            work, lambda: self._dead_letters.failed_timer(origin, "processing_error", error)
        )
        return Outcome.DEAD_LETTERED if written else Outcome.ABANDONED

    async def call(
        self, work: PartitionWork, origin: Origin, call: RedoCall, exc: RedoError
    ) -> bool:
        """Dead-letter a call Redo refused; False when the write was given up (revoke), so the
        call, and its record, are not done."""
        log.error(
            "Redo refused a call; dead-lettered: %s",
            exc,
            extra={"fulfillment_id": call.fulfillment_id, "partition": origin.partition},
        )
        return await self._writes.until_written(
            work, lambda: self._dead_letters.rejected_call(origin, call, exc)
        )

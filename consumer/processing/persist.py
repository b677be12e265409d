"""Persist: a shipment's state (or its tombstone) written to the changelog.

Contract: input a partition, a fulfillment ID, the state to keep (None: forget it) and the input
offset it reflects; output True once the changelog acknowledged it, False when the write was
given up on revoke (the record is then not done). Failures other than a broker refusal are
raised to the stage that asked, which dead-letters its record.

Also the rewrite jobs of ``attach``: fenced states and tombstones written again, so compaction
keeps the newest.
"""

from __future__ import annotations

from consumer.kafka.offsets import PartitionWork
from consumer.outcome import Outcome
from consumer.processing.writes import KafkaWrites
from consumer.rules import ShipmentState
from consumer.state.changelog import Changelog
from consumer.state.store import PartitionStore


class Persist:
    def __init__(self, changelog: Changelog, writes: KafkaWrites) -> None:
        self._changelog = changelog
        self._writes = writes

    async def state(
        self, work: PartitionWork, fulfillment_id: str, state: ShipmentState | None, offset: int
    ) -> bool:
        """Write the state (None: a tombstone) to the changelog; False if abandoned."""
        return await self._writes.until_written(
            work,
            lambda: self._changelog.write(work.partition, fulfillment_id, state, offset=offset),
        )

    async def rewrite(
        self, work: PartitionWork, store: PartitionStore, fulfillment_id: str
    ) -> Outcome:
        """Write a restored state again (a former owner's older write landed after it)."""
        state = store.get(fulfillment_id)
        if state is None:
            return Outcome.NO_CALL
        offset = store.offset_of(fulfillment_id)
        written = await self.state(work, fulfillment_id, state, offset)
        return Outcome.REWRITTEN if written else Outcome.ABANDONED

    async def rewrite_tombstone(
        self, work: PartitionWork, fulfillment_id: str, offset: int
    ) -> Outcome:
        """Write a restored tombstone again, for the same reason."""
        written = await self.state(work, fulfillment_id, None, offset)
        return Outcome.REWRITTEN if written else Outcome.ABANDONED

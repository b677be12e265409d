"""A shipment's state before a job touched it, to put back if the job fails before any call."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from consumer.rules import ShipmentState
from consumer.state.store import PartitionStore


@dataclass(frozen=True, slots=True)
class Snapshot:
    fulfillment_id: str
    state: ShipmentState | None
    offset: int

    @classmethod
    def of(cls, store: PartitionStore, fulfillment_id: str) -> Snapshot:
        return cls(fulfillment_id, store.get(fulfillment_id), store.offset_of(fulfillment_id))

    def restore(self, store: PartitionStore, *, reschedule: bool = True) -> None:
        store.discard(self.fulfillment_id)
        if self.state is None:
            return
        store.put(self.fulfillment_id, self.state, self.offset)
        if reschedule:
            with contextlib.suppress(Exception):  # it was scheduled with this state before
                store.schedule(self.fulfillment_id)

"""Pending schema: a record whose writer schema is not cached yet, decoded later in its FIFO.

Its job fetches the schema off the loop inside the shipment's own FIFO: later records of the
same shipment queue behind it, so its order is kept while others flow. Contract: input the
record, its ``SchemaPending`` and the clock floor of the moment it arrived; output the record's
outcome: a dead letter (``decode`` when the schema does not exist, ``future_event_time``,
``processing_error`` for any other failure), ``ABANDONED`` when revoked first, else ``Scan``'s.
"""

from __future__ import annotations

import logging
from datetime import datetime

from consumer.errors import DecodeError, SchemaPending
from consumer.kafka.offsets import PartitionWork
from consumer.kafka.records import RawRecord
from consumer.outcome import Outcome
from consumer.processing.dead_letter import DeadLetter, describe
from consumer.processing.decode import Decode
from consumer.processing.scan import Scan
from consumer.state.store import PartitionStore

log = logging.getLogger(__name__)


class PendingSchema:
    def __init__(
        self,
        decode: Decode,
        stores: dict[PartitionWork, PartitionStore],
        scan: Scan,
        dead_letter: DeadLetter,
    ) -> None:
        self._decode = decode
        self._stores = stores
        self._scan = scan
        self._dead_letter = dead_letter

    async def run(
        self, record: RawRecord, pending: SchemaPending, floor: datetime | None
    ) -> Outcome:
        """Fetch the record's writer schema (retried while the registry is unreachable), then
        process the record in this same job, ahead of the shipment's later records."""
        try:
            event = await self._decode.fetch_and_decode(record, pending)
        except DecodeError as exc:
            return await self._dead_letter.record(record, "decode", str(exc))
        except Exception as exc:
            log.exception("decoding a record failed; dead-lettered", extra=record.context())
            return await self._dead_letter.record(record, "processing_error", describe(exc))
        store = self._stores.get(record.work)
        if event is None or store is None or record.work.revoked:
            return Outcome.ABANDONED
        too_far = self._decode.future_error(event)
        if too_far is not None:
            return await self._dead_letter.record(record, "future_event_time", too_far)
        store.observe(event.occurred_at)
        clock = event.occurred_at if floor is None else max(floor, event.occurred_at)
        return await self._scan.run(record, store, event, clock)

"""Intake: a fetched batch, record by record, decoded and queued on its shipment's FIFO.

Contract: input records in fetch order (on the loop); each record of an attached, unrevoked
partition advances its partition's caught-up flag and clock, lets due timers of other shipments
be queued (``Timers``), and leaves as exactly one job on its shipment's FIFO: its ``Scan``, its
``PendingSchema`` decode, or its dead letter (``missing_key``, ``decode``,
``future_event_time``). Containment: nothing a record holds may escape from here; whatever goes
wrong with one record (its bytes, its dates, a bug) dead-letters that record as
``processing_error``, and the next one is processed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from consumer.errors import DecodeError, SchemaPending
from consumer.kafka.offsets import PartitionWork
from consumer.kafka.records import RawRecord
from consumer.processing.dead_letter import DeadLetter, describe
from consumer.processing.decode import Decode
from consumer.processing.jobs import Jobs
from consumer.processing.pending import PendingSchema
from consumer.processing.scan import Scan
from consumer.processing.settings import Clock
from consumer.processing.timers import Timers
from consumer.state.store import PartitionStore

log = logging.getLogger(__name__)


class Intake:
    def __init__(
        self,
        stores: dict[PartitionWork, PartitionStore],
        decode: Decode,
        *,
        timers: Timers,
        scan: Scan,
        pending: PendingSchema,
        dead_letter: DeadLetter,
        jobs: Jobs,
        wall_clock: Clock,
    ) -> None:
        self._stores = stores
        self._decode = decode
        self._timers = timers
        self._scan = scan
        self._pending = pending
        self._dead_letter = dead_letter
        self._jobs = jobs
        self._now = wall_clock

    def accept(self, records: Iterable[RawRecord]) -> None:
        """Queue a fetched batch, in fetch order (called on the loop)."""
        for record in records:
            store = self._stores.get(record.work)
            if record.work.revoked or store is None:
                continue
            record.work.caught_up = record.at_end
            try:
                self._intake(record, store)
            except Exception as exc:
                log.exception("record failed before processing", extra=record.context())
                self._dead_letter.submit(record, "processing_error", describe(exc))

    def _intake(self, record: RawRecord, store: PartitionStore) -> None:
        if not record.key:
            self._dead_letter.submit(record, "missing_key", "record has no key")
            return
        work = record.work
        try:
            event = self._decode.event(record)
        except SchemaPending as pending:
            # Fetched off the loop inside the shipment's own FIFO: later records of the same
            # shipment queue behind it, so its order is kept while others flow. The clock it
            # will be applied with is the one of this moment, as if it had decoded now.
            floor = store.clock(self._now(), caught_up=work.caught_up)
            key = record.key.decode("utf-8", "replace")
            self._jobs.submit(key, work, record.offset, self._pending.run(record, pending, floor))
            return
        except DecodeError as exc:
            self._dead_letter.submit(record, "decode", str(exc))
            return
        too_far = self._decode.future_error(event)
        if too_far is not None:
            self._dead_letter.submit(record, "future_event_time", too_far)
            return
        store.observe(event.occurred_at)
        clock = store.clock(self._now(), caught_up=work.caught_up)
        assert clock is not None  # stream time was just observed
        self._timers.fire_due(work, store, clock, skip=event.fulfillment_id)
        job = self._scan.run(record, store, event, clock)
        self._jobs.submit(event.fulfillment_id, work, record.offset, job)

"""Scan: the rules applied to one scan and its shipment's state, then its calls, then its state.

Runs as the scan's job on its shipment's FIFO, so the state it reads is the one the previous
job left. Contract: input the record, its decoded event and the clock to apply it at; output the
record's outcome (``DUPLICATE``, ``OUT_OF_ORDER``, or ``Deliver``'s), ``ABANDONED`` when a revoke
gave it up. Containment: any failure puts the shipment's state back (unless a call already went
out) and dead-letters the record as ``processing_error``; only a dead letter that cannot be
written escapes.
"""

from __future__ import annotations

import logging
from datetime import datetime

from consumer.kafka.records import RawRecord
from consumer.model import RedoCall, TrackingEvent
from consumer.ops import metrics
from consumer.outcome import Outcome
from consumer.processing.dead_letter import DeadLetter, describe
from consumer.processing.deliver import Deliver
from consumer.processing.persist import Persist
from consumer.processing.settings import ProcessingSettings
from consumer.processing.snapshot import Snapshot
from consumer.rules import Verdict, process_scan
from consumer.state.store import PartitionStore

log = logging.getLogger(__name__)


class Scan:
    def __init__(
        self,
        settings: ProcessingSettings,
        deliver: Deliver,
        persist: Persist,
        dead_letter: DeadLetter,
    ) -> None:
        self._rules = settings.rules
        self._forward = settings.forward
        self._deliver = deliver
        self._persist = persist
        self._dead_letter = dead_letter

    async def run(
        self, record: RawRecord, store: PartitionStore, event: TrackingEvent, clock: datetime
    ) -> Outcome:
        fulfillment_id = event.fulfillment_id
        before = Snapshot.of(store, fulfillment_id)
        sent: list[RedoCall] = []
        try:
            transition = process_scan(
                store.get(fulfillment_id),
                event,
                clock=clock,
                config=self._rules,
                forward=self._forward,
            )
            if transition.verdict is Verdict.DUPLICATE:
                metrics.DEDUP_DROPS.inc()
                # Its offset counts: the shipment must not expire before this record is
                # committed, or a replay of it would find no state and start a new one.
                store.put(fulfillment_id, transition.state, record.offset)
                store.schedule(fulfillment_id)
                return Outcome.DUPLICATE
            if transition.verdict is Verdict.OUT_OF_ORDER:
                metrics.OUT_OF_ORDER_SCANS.inc()
            store.put(fulfillment_id, transition.state, record.offset)
            outcome = await self._deliver.calls(record.work, record, transition.calls, sent)
            if outcome is Outcome.ABANDONED or not await self._persist.state(
                record.work, fulfillment_id, transition.state, store.offset_of(fulfillment_id)
            ):
                return Outcome.ABANDONED
            store.schedule(fulfillment_id)
        except Exception as exc:
            if not sent:
                before.restore(store)
            # else the new state stays (in memory): it carries the marks of the calls Redo
            # already has, and a terminal status; the old one would repeat or contradict them.
            log.exception("processing a record failed; dead-lettered", extra=record.context())
            return await self._dead_letter.record(record, "processing_error", describe(exc))
        return Outcome.OUT_OF_ORDER if transition.verdict is Verdict.OUT_OF_ORDER else outcome

"""Timer job: the rules' timers fired on one shipment's state, then its calls, then its state.

Runs on the shipment's FIFO like its scans. Contract: input the shipment and the clock its
timers are due at; output ``TIMERS``, ``EXPIRED`` (its tombstone written), ``NO_CALL`` (no state
any more) or ``ABANDONED`` on revoke. An expired shipment is forgotten only once its own records
are committed. Containment: any failure puts the state back (unless a call already went out),
does not reschedule it, and dead-letters the timer as ``processing_error``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from consumer.kafka.offsets import PartitionWork
from consumer.model import RedoCall
from consumer.outcome import Outcome
from consumer.processing.dead_letter import DeadLetter, describe
from consumer.processing.deliver import Deliver
from consumer.processing.persist import Persist
from consumer.processing.snapshot import Snapshot
from consumer.rules import RulesConfig, fire_timers, later
from consumer.state.store import PartitionStore

log = logging.getLogger(__name__)

EXPIRY_RECHECK = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class TimerOrigin:
    """Where a timer-fired call came from, for its dead letter: no input record, only a key."""

    topic: str
    partition: int
    key: bytes
    offset: int = -1


class TimerJob:
    def __init__(
        self, rules: RulesConfig, deliver: Deliver, persist: Persist, dead_letter: DeadLetter
    ) -> None:
        self._rules = rules
        self._deliver = deliver
        self._persist = persist
        self._dead_letter = dead_letter

    async def run(
        self, work: PartitionWork, store: PartitionStore, fulfillment_id: str, clock: datetime
    ) -> Outcome:
        before = Snapshot.of(store, fulfillment_id)
        origin = TimerOrigin(work.topic, work.partition, fulfillment_id.encode())
        sent: list[RedoCall] = []
        try:
            return await self._fire(work, store, fulfillment_id, clock, origin, sent)
        except Exception as exc:
            # The shipment keeps its state (with the marks of calls already sent) and is not
            # rescheduled: its next scan schedules it again, so a timer that cannot run does
            # not fail again every tick.
            if not sent:
                before.restore(store, reschedule=False)
            log.exception(
                "a shipment's timers failed; dead-lettered",
                extra={"fulfillment_id": fulfillment_id, "partition": work.partition},
            )
            return await self._dead_letter.timer(work, origin, describe(exc))

    async def _fire(
        self,
        work: PartitionWork,
        store: PartitionStore,
        fulfillment_id: str,
        clock: datetime,
        origin: TimerOrigin,
        sent: list[RedoCall],
    ) -> Outcome:
        state = store.get(fulfillment_id)
        if state is None:
            return Outcome.NO_CALL
        fired = fire_timers(state, clock=clock, config=self._rules)
        offset = store.offset_of(fulfillment_id)
        store.put(fulfillment_id, fired.state, offset)
        if await self._deliver.calls(work, origin, fired.calls, sent) is Outcome.ABANDONED:
            return Outcome.ABANDONED
        expired = store.expired(fulfillment_id, clock)
        # Expiry is decided per shipment: once its own records are committed, no replay can
        # bring them back, whatever the rest of the partition is doing.
        if expired and work.committed is not None and work.committed > offset:
            store.discard(fulfillment_id)
            written = await self._persist.state(work, fulfillment_id, None, offset)
            return Outcome.EXPIRED if written else Outcome.ABANDONED
        if fired.calls and not await self._persist.state(work, fulfillment_id, fired.state, offset):
            return Outcome.ABANDONED
        # An expired shipment whose records are not all committed may be replayed after a crash
        # or rebalance; forgetting it now would re-send its calls. Look again a little later.
        store.schedule(fulfillment_id, not_before=later(clock, EXPIRY_RECHECK) if expired else None)
        return Outcome.TIMERS

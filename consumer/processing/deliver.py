"""Deliver: a transition's calls sent to Redo, in order, each to a final outcome.

Contract: input the calls one job (a scan or a shipment's timers) caused, in order; output the
job's outcome so far: ``NO_CALL``, ``STALE`` (every call older than ``MAX_SCAN_AGE``, not sent),
``SENT``, ``DEAD_LETTERED`` (some call refused and dead-lettered), or ``ABANDONED`` (revoke or
shutdown: the record is not done). Each call Redo answered with a 2xx is appended to ``sent``
as it happens, so the caller's containment knows whether a call already went out. Failures of
the deliverer itself are raised to that containment.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial

from consumer.delivery.deliverer import Deliverer
from consumer.kafka.dead_letters import Origin
from consumer.kafka.offsets import PartitionWork
from consumer.model import CallKind, RedoCall
from consumer.ops import metrics
from consumer.outcome import Outcome
from consumer.processing.dead_letter import DeadLetter
from consumer.processing.settings import Clock, ProcessingSettings
from consumer.rules import is_stale

log = logging.getLogger(__name__)


class Deliver:
    def __init__(
        self,
        deliverer: Deliverer,
        dead_letter: DeadLetter,
        settings: ProcessingSettings,
        wall_clock: Clock,
    ) -> None:
        self._deliverer = deliverer
        self._dead_letter = dead_letter
        self._max_age = settings.max_scan_age
        self._now = wall_clock

    async def calls(
        self,
        work: PartitionWork,
        origin: Origin,
        calls: Sequence[RedoCall],
        sent: list[RedoCall],
    ) -> Outcome:
        """Send calls in order; the outcome, ``ABANDONED`` when given up (revoke, shutdown)."""
        outcome = Outcome.NO_CALL
        for index, call in enumerate(calls):
            if call.kind is CallKind.EVENT:
                metrics.child(metrics.RULE_FIRINGS, call.status).inc()
            if is_stale(call, now=self._now(), max_age=self._max_age):
                metrics.STALE_DROPS.labels(kind=call.kind.value).inc()
                log.info(
                    "not sent: older than MAX_SCAN_AGE",
                    extra={"fulfillment_id": call.fulfillment_id, "call_status": call.status},
                )
                outcome = Outcome.STALE if outcome is Outcome.NO_CALL else outcome
                continue
            # A revoke abandons a transition only before its first call: once one went out, the
            # rest get until the drain's deadline, so the new owner does not replay (and re-send)
            # the calls already made.
            result = await self._deliverer.deliver(
                call,
                abandoned=(lambda: work.given_up) if index > 0 else (lambda: work.revoked),
                dead_letter=partial(self._dead_letter.call, work, origin),
                follow_up=index > 0,
            )
            if result is Outcome.ABANDONED:
                return Outcome.ABANDONED
            if result is Outcome.SENT:
                sent.append(call)
                metrics.child(metrics.EVENT_TO_CALL_LATENCY, call.kind.value).observe(
                    max(0.0, (self._now() - call.at).total_seconds())
                )
                if outcome is Outcome.NO_CALL or outcome is Outcome.STALE:
                    outcome = Outcome.SENT
            else:
                outcome = Outcome.DEAD_LETTERED
        return outcome

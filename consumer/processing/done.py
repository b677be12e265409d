"""Done: the last stage. A record whose work reached a final outcome may be committed.

Contract: ``mark(work, offset, outcome)`` marks ``offset`` done (the commit may now pass it) and
counts ``tracking_records_done_total{outcome}``, unless the outcome is ``ABANDONED`` or the work
had no input record (``offset`` None: timers, rewrites). ``failed_unexpectedly`` is the one
place a failure outside every contained path ends: the record stays undone, and
``unexpected_failures`` (which ``/healthz`` reads) and ``tracking_unexpected_failures_total``
count it.
"""

from __future__ import annotations

import logging

from consumer.kafka.offsets import PartitionWork
from consumer.ops import metrics
from consumer.outcome import Outcome

log = logging.getLogger(__name__)


class Done:
    def __init__(self) -> None:
        self.unexpected_failures = 0
        """Failures no contained path caught (``/healthz`` reports them)."""

    def mark(self, work: PartitionWork, offset: int | None, outcome: Outcome) -> None:
        if outcome is not Outcome.ABANDONED and offset is not None:
            work.done(offset)
            metrics.child(metrics.RECORDS_DONE, outcome).inc()

    def failed_unexpectedly(self, what: str, work: PartitionWork) -> None:
        """Something outside every contained path failed (a bug in the containment itself):
        its record stays undone, so nothing is committed past it, and liveness fails, so the
        pod restarts and the record is replayed rather than the partition stalling unseen."""
        self.unexpected_failures += 1
        metrics.UNEXPECTED_FAILURES.inc()
        log.exception(
            "%s failed unexpectedly; its record stays uncommitted and /healthz fails",
            what,
            extra={"partition": work.partition},
        )

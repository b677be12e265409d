"""The ETA-shift rules: *delayed* (a) and *arriving_early*, from a scan's new ETA.

A scan's ETA is compared with the shipment's reference ETA (the first seen, moved by every
reported shift); see the engine's docstring, "ETA reference".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from consumer.model import AutomationEvent
from consumer.rules.calls import days
from consumer.rules.config import Thresholds
from consumer.rules.state import ShipmentState


@dataclass(frozen=True, slots=True)
class Shift:
    """An ETA shift to report: the rule, and the call's message."""

    rule: AutomationEvent
    message: str


def eta_shift(
    state: ShipmentState, eta: date, thresholds: Thresholds
) -> tuple[date | None, Shift | None]:
    """Delayed (a) and arriving_early: compare a scan's ETA with the reference ETA.

    The new reference ETA, and the shift to report (None: nothing to report). A reported ETA is
    to be remembered in the rule's ``notified_*``.
    """
    reference = state.reference_eta
    if reference is None:
        return eta, None
    shift = (eta - reference).days
    if shift >= thresholds.delay_min_days:
        rule, already = AutomationEvent.DELAYED, state.notified_delayed
    elif -shift >= thresholds.early_min_days:
        rule, already = AutomationEvent.ARRIVING_EARLY, state.notified_early
    else:
        return reference, None
    if eta in already:
        return eta, None
    direction = "later" if shift > 0 else "earlier"
    message = f"Estimated delivery moved from {reference} to {eta}, {days(abs(shift))} {direction}"
    return eta, Shift(rule, message)

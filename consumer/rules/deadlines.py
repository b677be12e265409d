"""When a shipment's timers fall due and when its state may expire: pure date arithmetic.

Every deadline saturates at ``END_OF_TIME`` (a scan or an ETA in year 9999 would otherwise
overflow ``datetime.max``); a timer at ``END_OF_TIME`` never fires. Part of the rules: the
store's ``rules_tag`` names this module's source with the engine's, so a deadline written by
other code is recomputed, not trusted.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

from consumer.rules.config import RulesConfig, Thresholds
from consumer.rules.state import ShipmentState

END_OF_TIME = datetime.max.replace(tzinfo=UTC)
"""The latest representable moment: where deadlines saturate."""


def next_deadline(state: ShipmentState, config: RulesConfig) -> datetime | None:
    """The earliest deadline of a pending timer; None when no timer can fire without a new scan.

    ``fire_timers`` fires nothing for a clock at or before it and something for any clock after.
    """
    thresholds = config.for_carrier(state.carrier)
    stall_at = stall_deadline(state, thresholds)
    eta_at = eta_deadline(state, thresholds)
    if stall_at is None or eta_at is None:
        return eta_at if stall_at is None else stall_at
    return min(stall_at, eta_at)


def expires_at(state: ShipmentState, config: RulesConfig) -> datetime:
    """When the state may be dropped (tombstoned): a while after the last scan or terminal status.

    Compared with the same partition clock as the timers.
    """
    thresholds = config.for_carrier(state.carrier)
    after_last_scan = later(state.last_scan_at, thresholds.expire_after_last_scan)
    if state.terminal_at is None:
        return after_last_scan
    return min(after_last_scan, later(state.terminal_at, thresholds.expire_after_terminal))


def later(moment: datetime, span: timedelta) -> datetime:
    """``moment + span``, saturating at ``END_OF_TIME`` instead of raising ``OverflowError``."""
    try:
        return moment + span
    except OverflowError:
        return END_OF_TIME


def stall_deadline(state: ShipmentState, thresholds: Thresholds) -> datetime | None:
    if state.terminal_at is not None or state.stall_notified:
        return None
    threshold = thresholds.stall_threshold(state.last_status)
    return None if threshold is None else later(state.last_scan_at, threshold)


def eta_deadline(state: ShipmentState, thresholds: Thresholds) -> datetime | None:
    eta = state.current_eta
    if state.terminal_at is not None or eta is None or eta in state.notified_delayed:
        return None
    return end_of_eta_day(eta, thresholds.eta_grace)


@lru_cache(maxsize=1024)
def end_of_eta_day(eta: date, grace: timedelta) -> datetime:
    """The end of the ETA day, taken as the next day's 00:00 UTC, plus ``grace``.

    UTC because the ETA is a bare calendar date with no time zone (Redo notes carriers' dates may
    be off by a day anyway); a grace of a few hours can absorb the destination's offset.

    Cached: ~4 ETA deadlines per scan (each fire_timers and next_deadline) over a few hundred
    live dates, and combine + add + later per call were 20 % of the rules' profiled time once
    the replaces were gone. Bounded because the date is untrusted input.
    """
    if eta == date.max:
        return END_OF_TIME
    return later(datetime.combine(eta + timedelta(days=1), time(0), tzinfo=UTC), grace)

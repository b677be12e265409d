"""The rules engine of docs/design.md §3 to §6 as pure functions: (state, input) → (new state,
Redo calls).

No I/O and no wall clock: the caller passes the clock, so a backlog replay and a live run are the
same computation. Calls in a result are in the order they must be sent for that fulfillment, and
results must be queued in the order they were computed (timer results included).

**When to fire timers.** ``process_scan`` does the whole docs/design.md §5 protocol for one record:
it fires the shipment's timers due before the scan's event time T (``fire_timers(state, clock=T)``),
applies the scan (``apply_scan``), then fires again at the partition clock with this record counted
(while catching up, the stream time: the largest event time seen, T included; once caught up, the
wall clock). Firing at T
first, not at the partition clock, matters: a timer due between T and the clock must see this scan
first, or a scan that happened in time would still be flagged stalled because the consumer was
behind. Firing after the scan catches what the scan itself made due (an ETA whose day is over).
Between records, the caller's timer wheel calls ``fire_timers`` with the partition clock once it
passes ``next_deadline`` (re-read after every transition). A timer fires once the clock is strictly
past its deadline (docs/design.md §4: "no scan for *longer than* the threshold", "the clock *passes*
the end of the ETA day"); at exactly the deadline it does not.

**Detection time.** An event call's ``at`` is the deterministic moment its rule became true: the
timer's deadline (``last_scan_at + threshold``, or the end of the ETA day + ``eta_grace``), or the
scan's event time for the ETA-shift rules. A live consumer with a prompt timer detects at exactly
that moment; a replay that jumps the clock over it produces the very same call. Results of one
``fire_timers`` are sorted by ``at``, so ticking the clock in small steps or one big jump yields the
same call sequence.

**"Notified" only after the 2xx.** A returned state already carries the marks of its own calls
(``stall_notified``, ``notified_*``, ``last_status_sent``, the eventId) so later inputs, processed
while those calls are still in flight, never repeat them. The durability rule for the caller:
*write a transition's state to the changelog only once every call of that transition, and so,
by per-fulfillment order, every earlier call, has got its 2xx* (or was dead-lettered, or dropped by
``is_stale``: all three are "done" per docs/design.md §7 and keep their marks). A crash before the
2xx leaves the changelog at the previous state and the input uncommitted, so the replay recomputes
and re-sends the call; the only duplicate is a crash after the 2xx but before the changelog
acknowledgement, which is rare and allowed by at-least-once delivery. Nothing ever needs rolling
back, because a call is never abandoned without being done. The changelog may run ahead of the
committed offsets; records replayed over a newer state are then dropped by their remembered eventId
(or as out of order), so they cause no second call.

**Scans.** A repeated eventId is dropped (``DUPLICATE``: no call, no change). A scan older than
``last_scan_at`` is ``OUT_OF_ORDER``: no call, status and ETAs untouched; its eventId is remembered
(a replay of it is then a plain duplicate), and a terminal status on it still marks the shipment
terminal, because a late-arriving "delivered" must silence the stall and delay rules even when a
scanner's clock ran a little behind. A scan at the same instant as ``last_scan_at`` is applied but
does not start a new stall episode: it says nothing new about the gap. An ``unknown`` scan is
carrier activity (it ends a stall episode and may carry an ETA) but makes no status call and
leaves ``last_status`` unchanged. Scans after a terminal status are still forwarded as status calls
(they are tracking history); terminal is sticky, so no event call ever follows it.

**The calendar's edges.** Every field may hold its most extreme legal value: a last scan or an
ETA in year 9999 would put a deadline past ``datetime.max``. Deadlines saturate at
``END_OF_TIME`` instead of overflowing, and a timer at ``END_OF_TIME`` never fires (no clock is
strictly past it); a deadline in year 1 simply lies in the past.

**ETA reference.** The first ETA seen becomes the reference. A later ETA at least
``delay_min_days`` after the reference is a *delayed* (a); at least ``early_min_days`` before it,
*arriving_early*. Either shift moves the reference to the new ETA, so a further slip of another day
fires again for the new value, while small drifts below the thresholds accumulate against the old
reference. Each rule fires at most once per ETA value; *delayed* (a) and (b) share one record of
values, so an ETA already reported delayed is not reported again when its day passes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Literal

from consumer.model import (
    TERMINAL_STATUSES,
    AutomationEvent,
    CallKind,
    RedoCall,
    ShipmentStatus,
    TrackingEvent,
)
from consumer.rules.config import RulesConfig, Thresholds
from consumer.rules.state import (
    MAX_NOTIFIED_ETAS,
    MAX_RECENT_EVENT_IDS,
    ShipmentState,
    remember,
)

END_OF_TIME = datetime.max.replace(tzinfo=UTC)
"""The latest representable moment: where deadlines saturate."""

ForwardPolicy = Literal["all", "changes"]
"""``FORWARD_SCANS``: a status call for every scan, or only when the status differs from the last
one sent."""


class Verdict(StrEnum):
    """What happened to a scan; the caller counts ``duplicate`` and ``out_of_order``."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"


@dataclass(frozen=True, slots=True)
class Transition:
    """The new state and the calls to send, in order, for one fulfillment."""

    state: ShipmentState
    calls: tuple[RedoCall, ...]


@dataclass(frozen=True, slots=True)
class ScanTransition(Transition):
    """A ``Transition`` caused by a scan, with the scan's verdict."""

    verdict: Verdict


def process_scan(
    state: ShipmentState | None,
    event: TrackingEvent,
    *,
    clock: datetime,
    config: RulesConfig,
    forward: ForwardPolicy,
) -> ScanTransition:
    """Fire timers due before the scan, apply it, fire timers due by ``clock`` (docs/design.md §5).

    ``clock`` is the partition clock with this record counted. The calls are in that order; the
    verdict is the scan's.
    """
    before: tuple[RedoCall, ...] = ()
    if state is not None:
        fired = fire_timers(state, clock=event.occurred_at, config=config)
        state, before = fired.state, fired.calls
    applied = apply_scan(state, event, config=config, forward=forward)
    after = fire_timers(applied.state, clock=clock, config=config)
    return ScanTransition(after.state, before + applied.calls + after.calls, applied.verdict)


def apply_scan(
    state: ShipmentState | None,
    event: TrackingEvent,
    *,
    config: RulesConfig,
    forward: ForwardPolicy,
) -> ScanTransition:
    """Apply one scan without firing timers (see ``process_scan`` for the order of the two).

    ``state`` is None for a fulfillment not seen before (or whose state expired).
    """
    if state is None:
        fresh = ShipmentState(
            fulfillment_id=event.fulfillment_id,
            store_id=event.store_id,
            order_id=event.order_id,
            last_scan_at=event.occurred_at,
            recent_event_ids=(event.event_id,),
        )
        return _apply(fresh, event, fresh.recent_event_ids, config=config, forward=forward)
    if event.event_id in state.recent_event_ids:
        return ScanTransition(state, (), Verdict.DUPLICATE)
    seen = remember(state.recent_event_ids, event.event_id, MAX_RECENT_EVENT_IDS)
    if event.occurred_at < state.last_scan_at:
        late = replace(state, recent_event_ids=seen, terminal_at=_terminal_at(state, event))
        return ScanTransition(late, (), Verdict.OUT_OF_ORDER)
    return _apply(state, event, seen, config=config, forward=forward)


def fire_timers(state: ShipmentState, *, clock: datetime, config: RulesConfig) -> Transition:
    """Fire the stall and ETA-passed timers whose deadline ``clock`` is strictly past.

    Idempotent: each fired timer is marked in the returned state and does not fire again.
    """
    thresholds = config.for_carrier(state.carrier)
    # Both calls are built from the state before its marks (neither reads them), and the marks
    # are set in one replace at the end, none at all in the common case of nothing due.
    calls: list[RedoCall] = []
    stall_notified, notified_delayed = state.stall_notified, state.notified_delayed
    stall_at = _stall_deadline(state, thresholds)
    if stall_at is not None and clock > stall_at:
        calls.append(_stall_call(state, stall_at))
        stall_notified = True
    eta_at = _eta_deadline(state, thresholds)
    if eta_at is not None and state.current_eta is not None and clock > eta_at:
        calls.append(_eta_passed_call(state, eta_at))
        notified_delayed = remember(notified_delayed, state.current_eta, MAX_NOTIFIED_ETAS)
    if not calls:
        return Transition(state, ())
    calls.sort(key=lambda call: call.at)
    fired = replace(state, stall_notified=stall_notified, notified_delayed=notified_delayed)
    return Transition(fired, tuple(calls))


def next_deadline(state: ShipmentState, config: RulesConfig) -> datetime | None:
    """The earliest deadline of a pending timer; None when no timer can fire without a new scan.

    ``fire_timers`` fires nothing for a clock at or before it and something for any clock after.
    """
    thresholds = config.for_carrier(state.carrier)
    stall_at = _stall_deadline(state, thresholds)
    eta_at = _eta_deadline(state, thresholds)
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


def is_stale(call: RedoCall, *, now: datetime, max_age: timedelta) -> bool:
    """docs/design.md §4 stale-news guard, applied at send time: ``call.at`` older than ``max_age``.

    ``max_age`` of zero turns the guard off. A stale call still counts as done, so the state that
    produced it keeps its marks.
    """
    return max_age > timedelta(0) and now - call.at > max_age


def _apply(
    state: ShipmentState,
    event: TrackingEvent,
    recent_event_ids: tuple[str, ...],
    *,
    config: RulesConfig,
    forward: ForwardPolicy,
) -> ScanTransition:
    """Every change of an applied scan in one ``replace``: ``dataclasses.replace`` re-runs the
    14-field frozen ``__init__`` whatever it changes (2-5 µs), and one per step was 2.5 per scan
    and the rules' largest cost; with one, process_scan + the store's deadline calls went from
    42 to 21 µs an event (micro-benchmark on the bench workload)."""
    status = event.status
    known = status is not ShipmentStatus.UNKNOWN
    send_status = known and (forward == "all" or status != state.last_status_sent)
    carrier = event.carrier or state.carrier
    terminal_at = _terminal_at(state, event)
    eta = event.estimated_delivery_date
    reference_eta, notified_delayed, notified_early = (
        state.reference_eta,
        state.notified_delayed,
        state.notified_early,
    )
    shift: _Shift | None = None
    if eta is not None and terminal_at is None:
        reference_eta, shift = _eta_shift(state, eta, config.for_carrier(carrier))
        if shift is not None and shift.rule is AutomationEvent.DELAYED:
            notified_delayed = remember(notified_delayed, eta, MAX_NOTIFIED_ETAS)
        elif shift is not None:
            notified_early = remember(notified_early, eta, MAX_NOTIFIED_ETAS)
    state = replace(
        state,
        store_id=event.store_id,
        order_id=event.order_id,
        carrier=carrier,
        last_status=status if known else state.last_status,
        last_status_sent=status if send_status else state.last_status_sent,
        current_eta=eta or state.current_eta,
        reference_eta=reference_eta,
        notified_delayed=notified_delayed,
        notified_early=notified_early,
        stall_notified=state.stall_notified and event.occurred_at <= state.last_scan_at,
        last_scan_at=event.occurred_at,
        terminal_at=terminal_at,
        recent_event_ids=recent_event_ids,
    )
    # The calls read only the IDs and current_eta, so building them from the final state is the
    # same as building each after its own step.
    calls: list[RedoCall] = []
    if send_status:
        calls.append(_status_call(state, event))
    if shift is not None:
        calls.append(_event_call(state, shift.rule, event.occurred_at, shift.message))
    return ScanTransition(state, tuple(calls), Verdict.APPLIED)


def _terminal_at(state: ShipmentState, event: TrackingEvent) -> datetime | None:
    """``terminal_at`` once ``event`` is seen: the earliest terminal scan's time."""
    if event.status not in TERMINAL_STATUSES:
        return state.terminal_at
    if state.terminal_at is not None and state.terminal_at >= event.occurred_at:
        return state.terminal_at
    return event.occurred_at


@dataclass(frozen=True, slots=True)
class _Shift:
    """An ETA shift to report: the rule, and the call's message."""

    rule: AutomationEvent
    message: str


def _eta_shift(
    state: ShipmentState, eta: date, thresholds: Thresholds
) -> tuple[date | None, _Shift | None]:
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
    message = f"Estimated delivery moved from {reference} to {eta}, {_days(abs(shift))} {direction}"
    return eta, _Shift(rule, message)


def _stall_deadline(state: ShipmentState, thresholds: Thresholds) -> datetime | None:
    if state.terminal_at is not None or state.stall_notified:
        return None
    threshold = thresholds.stall_threshold(state.last_status)
    return None if threshold is None else later(state.last_scan_at, threshold)


def _eta_deadline(state: ShipmentState, thresholds: Thresholds) -> datetime | None:
    eta = state.current_eta
    if state.terminal_at is not None or eta is None or eta in state.notified_delayed:
        return None
    return _end_of_eta_day(eta, thresholds.eta_grace)


@lru_cache(maxsize=1024)
def _end_of_eta_day(eta: date, grace: timedelta) -> datetime:
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


def _status_call(state: ShipmentState, event: TrackingEvent) -> RedoCall:
    return RedoCall(
        kind=CallKind.STATUS,
        store_id=state.store_id,
        order_id=state.order_id,
        fulfillment_id=state.fulfillment_id,
        status=event.status.value,
        at=event.occurred_at,
        message=event.message,
        location=event.location,
        estimated_delivery_date=state.current_eta,
    )


def _event_call(
    state: ShipmentState, rule: AutomationEvent, at: datetime, message: str
) -> RedoCall:
    return RedoCall(
        kind=CallKind.EVENT,
        store_id=state.store_id,
        order_id=state.order_id,
        fulfillment_id=state.fulfillment_id,
        status=rule.value,
        at=at,
        message=message,
        estimated_delivery_date=state.current_eta,
    )


def _stall_call(state: ShipmentState, deadline: datetime) -> RedoCall:
    message = (
        f"No carrier scan for more than {_duration(deadline - state.last_scan_at)} "
        f"while {state.last_status} "
        f"(last scan {_iso(state.last_scan_at)})"
    )
    return _event_call(state, AutomationEvent.STALLED_IN_TRANSIT, deadline, message)


def _eta_passed_call(state: ShipmentState, deadline: datetime) -> RedoCall:
    message = (
        f"Estimated delivery date {state.current_eta} has passed without delivery "
        f"(last status {state.last_status or ShipmentStatus.UNKNOWN})"
    )
    return _event_call(state, AutomationEvent.DELAYED, deadline, message)


def _days(count: int) -> str:
    return f"{count} day" if count == 1 else f"{count} days"


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

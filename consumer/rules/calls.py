"""The Redo calls the rules make: a status call per forwarded scan, an event call per rule.

Also the stale-news guard (``is_stale``), applied at send time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from consumer.model import AutomationEvent, CallKind, RedoCall, ShipmentStatus, TrackingEvent
from consumer.rules.state import ShipmentState


def is_stale(call: RedoCall, *, now: datetime, max_age: timedelta) -> bool:
    """docs/design.md §4 stale-news guard, applied at send time: ``call.at`` older than ``max_age``.

    ``max_age`` of zero turns the guard off. A stale call still counts as done, so the state that
    produced it keeps its marks.
    """
    return max_age > timedelta(0) and now - call.at > max_age


def status_call(state: ShipmentState, event: TrackingEvent) -> RedoCall:
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


def event_call(state: ShipmentState, rule: AutomationEvent, at: datetime, message: str) -> RedoCall:
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


def stall_call(state: ShipmentState, deadline: datetime) -> RedoCall:
    message = (
        f"No carrier scan for more than {_duration(deadline - state.last_scan_at)} "
        f"while {state.last_status} "
        f"(last scan {_iso(state.last_scan_at)})"
    )
    return event_call(state, AutomationEvent.STALLED_IN_TRANSIT, deadline, message)


def eta_passed_call(state: ShipmentState, deadline: datetime) -> RedoCall:
    message = (
        f"Estimated delivery date {state.current_eta} has passed without delivery "
        f"(last status {state.last_status or ShipmentStatus.UNKNOWN})"
    )
    return event_call(state, AutomationEvent.DELAYED, deadline, message)


def days(count: int) -> str:
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

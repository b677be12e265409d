"""The stateless scan → status call mapping of DESIGN §3 (every scan but ``unknown``)."""

from __future__ import annotations

from collections.abc import Sequence

from consumer.model import CallKind, RedoCall, ShipmentStatus, TrackingEvent


def status_call(event: TrackingEvent) -> RedoCall | None:
    """The status call a scan causes, or None for ``unknown`` (Redo has no such status)."""
    if event.status is ShipmentStatus.UNKNOWN:
        return None
    return RedoCall(
        kind=CallKind.STATUS,
        store_id=event.store_id,
        order_id=event.order_id,
        fulfillment_id=event.fulfillment_id,
        status=event.status.value,
        at=event.occurred_at,
        message=event.message,
        location=event.location,
        estimated_delivery_date=event.estimated_delivery_date,
    )


class ScanForwarder:
    """Forwards every scan as a status call."""

    def process(self, event: TrackingEvent) -> Sequence[RedoCall]:
        call = status_call(event)
        return () if call is None else (call,)

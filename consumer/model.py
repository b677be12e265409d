"""The domain types every layer shares: what comes in (a scan) and what goes out (a Redo call)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum


class ShipmentStatus(StrEnum):
    """The carrier's normalized status, as in the Avro enum ``ShipmentStatus``."""

    PRE_TRANSIT = "pre_transit"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    AVAILABLE_FOR_PICKUP = "available_for_pickup"
    DELIVERED = "delivered"
    RETURN_TO_SENDER = "return_to_sender"
    FAILURE = "failure"
    CANCELLED = "cancelled"
    ERROR = "error"
    UNKNOWN = "unknown"


def stored_status(value: str | None) -> ShipmentStatus | None:
    """A status read back from state: one this version does not know (written by a newer
    version) is ``UNKNOWN``, never an error."""
    if value is None:
        return None
    try:
        return ShipmentStatus(value)
    except ValueError:
        return ShipmentStatus.UNKNOWN


TERMINAL_STATUSES = frozenset(
    {ShipmentStatus.DELIVERED, ShipmentStatus.RETURN_TO_SENDER, ShipmentStatus.CANCELLED}
)


class AutomationEvent(StrEnum):
    """Redo event types: they trigger automations without changing the shipment's status."""

    STALLED_IN_TRANSIT = "stalled_in_transit"
    DELAYED = "delayed"
    ARRIVING_EARLY = "arriving_early"


class CallKind(StrEnum):
    """A status call forwards a scan; an event call reports a rule firing."""

    STATUS = "status"
    EVENT = "event"


@dataclass(frozen=True, slots=True)
class Location:
    city: str | None = None
    state: str | None = None
    country: str | None = None
    postal_code: str | None = None


@dataclass(frozen=True, slots=True)
class TrackingEvent:
    """One carrier scan, decoded from the Avro record ``TrackingEvent``.

    ``occurred_at`` is always timezone-aware UTC.
    """

    event_id: str
    store_id: str
    order_id: str
    fulfillment_id: str
    status: ShipmentStatus
    occurred_at: datetime
    carrier: str | None = None
    tracking_number: str | None = None
    message: str | None = None
    location: Location | None = None
    estimated_delivery_date: date | None = None


@dataclass(frozen=True, slots=True)
class RedoCall:
    """One POST to ``.../fulfillments/{fulfillmentId}/shipment-status``.

    ``status`` is a ``ShipmentStatus`` value (never ``unknown``) for a status call, an
    ``AutomationEvent`` value for an event call. ``at`` is the scan time (status call) or the
    detection time (event call); it becomes the body's ``datetime``.
    """

    kind: CallKind
    store_id: str
    order_id: str
    fulfillment_id: str
    status: str
    at: datetime
    message: str | None = None
    location: Location | None = None
    estimated_delivery_date: date | None = None

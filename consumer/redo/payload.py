"""The HTTP request for one Redo call: its path and JSON body, per Redo's request schema."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import quote

from consumer.model import Location, RedoCall


def request_path(call: RedoCall) -> str:
    """``/stores/{storeId}/orders/{orderId}/fulfillments/{fulfillmentId}/shipment-status``.

    Every segment is percent-encoded with nothing kept safe: an ID containing ``/``, ``?`` or
    ``%`` must stay one path segment, not become two or a query string.
    """
    store, order, fulfillment = (
        quote(segment, safe="") for segment in (call.store_id, call.order_id, call.fulfillment_id)
    )
    return f"/stores/{store}/orders/{order}/fulfillments/{fulfillment}/shipment-status"


def request_body(call: RedoCall) -> dict[str, Any]:
    """The JSON body: ``status`` and ``datetime`` always, every other field only when known.

    Unknown values are omitted rather than sent as ``null``: the schema allows ``null``, but an
    absent field cannot be mistaken by Redo for "clear the value it already has".
    """
    body: dict[str, Any] = {"status": call.status, "datetime": iso_utc(call.at)}
    if call.message is not None:
        body["message"] = call.message
    location = _location(call.location)
    if location:
        body["location"] = location
    if call.estimated_delivery_date is not None:
        body["estimatedDeliveryDate"] = eta_datetime(call.estimated_delivery_date)
    return body


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``, e.g. ``2024-05-01T12:00:00.000Z``.

    A naive datetime is refused: guessing its zone would silently shift every timestamp.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"datetime must be timezone-aware, got naive {moment.isoformat()}")
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="milliseconds") + "Z"


def eta_datetime(eta: date) -> str:
    """The ETA as midnight UTC of its calendar day, e.g. ``2024-05-03T00:00:00.000Z``.

    The request schema declares ``estimatedDeliveryDate`` as ``format: date-time`` while the
    carrier's ETA is a calendar date (the response even returns it as ``YYYY-MM-DD``). Midnight
    UTC keeps the date part of the string equal to the carrier's date, so Redo reads back the
    same day whichever way it parses the value.
    """
    return iso_utc(datetime.combine(eta, time(0), tzinfo=UTC))


def _location(location: Location | None) -> dict[str, str]:
    if location is None:
        return {}
    fields = {
        "city": location.city,
        "state": location.state,
        "country": location.country,
        "postalCode": location.postal_code,
    }
    return {name: value for name, value in fields.items() if value is not None}

"""Decoded Avro fields → a ``TrackingEvent``, with the checks every decoder applies.

IDs must be non-blank and at most ``MAX_ID_LENGTH`` characters; timestamps and dates are
accepted as logical-type values or as the plain numbers a writer without logical types writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from consumer.errors import DecodeError
from consumer.model import Location, ShipmentStatus, TrackingEvent

MAX_ID_LENGTH = 256  # real IDs are short; a hostile one would bloat state records and URLs
_ID_FIELDS = ("eventId", "storeId", "orderId", "fulfillmentId")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_DATE = date(1970, 1, 1)
MILLISECOND = timedelta(milliseconds=1)


def record_to_event(record: Mapping[str, Any]) -> TrackingEvent:
    """The event for a decoded Avro record; ``DecodeError`` if it is not a usable event.

    Accepts logical-type values (datetime, date) as fastavro returns them, and the plain
    long/int a writer schema without logical types produces (epoch milliseconds, epoch days).
    """
    event_id, store_id, order_id, fulfillment_id = (
        required_id(record.get(f), f) for f in _ID_FIELDS
    )
    try:
        status = ShipmentStatus(record["status"])
        occurred_at = _utc_datetime(record["occurredAt"])
        estimated_delivery_date = _optional_date(record.get("estimatedDeliveryDate"))
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise DecodeError(f"TrackingEvent {event_id!r}: invalid field value: {exc!r}") from exc
    location = record.get("location")
    return TrackingEvent(
        event_id=event_id,
        store_id=store_id,
        order_id=order_id,
        fulfillment_id=fulfillment_id,
        status=status,
        occurred_at=occurred_at,
        carrier=record.get("carrier"),
        tracking_number=record.get("trackingNumber"),
        message=record.get("message"),
        location=None
        if location is None
        else Location(
            city=location.get("city"),
            state=location.get("state"),
            country=location.get("country"),
            postal_code=location.get("postalCode"),
        ),
        estimated_delivery_date=estimated_delivery_date,
    )


def required_id(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DecodeError(f"TrackingEvent field {field} is empty or missing")
    if len(value) > MAX_ID_LENGTH:
        raise DecodeError(
            f"TrackingEvent field {field} is {len(value)} characters long; "
            f"at most {MAX_ID_LENGTH} are accepted"
        )
    return value


def _utc_datetime(value: object) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, int):
        return EPOCH + value * MILLISECOND
    raise TypeError(f"occurredAt must be a timestamp, not {type(value).__name__}")


def _optional_date(value: object) -> date | None:
    if value is None or isinstance(value, date):
        return value
    if isinstance(value, int):
        return EPOCH_DATE + timedelta(days=value)
    raise TypeError(f"estimatedDeliveryDate must be a date, not {type(value).__name__}")

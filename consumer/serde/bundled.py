"""A hand-written reader for values written with the bundled schema itself (the common case).

Reads straight into a ``TrackingEvent``, without fastavro's generic per-field dispatch and the
dict in between. Checked against the bundled schema at import: the schema cannot change without
this reader changing too.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from consumer.model import Location, ShipmentStatus, TrackingEvent
from consumer.serde.fields import EPOCH, EPOCH_DATE, MILLISECOND, required_id
from consumer.serde.schemas import TRACKING_EVENT, tracking_event_schema

# The bundled schema as ``read_bundled`` reads it by hand: (field, type), types as fastavro's
# parsed schema spells them. Checked against the schema at import, so the schema cannot change
# without this reader changing too.
_OPTIONAL_STRING = ("null", "string")
_BUNDLED_LAYOUT = (
    ("eventId", "string"),
    ("storeId", "string"),
    ("orderId", "string"),
    ("fulfillmentId", "string"),
    ("carrier", _OPTIONAL_STRING),
    ("trackingNumber", _OPTIONAL_STRING),
    ("status", "enum"),
    ("occurredAt", "timestamp-millis"),
    ("message", _OPTIONAL_STRING),
    (
        "location",
        (
            "null",
            tuple((name, _OPTIONAL_STRING) for name in ("city", "state", "country", "postalCode")),
        ),
    ),
    ("estimatedDeliveryDate", ("null", "date")),
)


def _layout(schema: Any) -> Any:
    if isinstance(schema, list):
        return tuple(_layout(branch) for branch in schema)
    if isinstance(schema, str):
        return schema
    if schema["type"] == "record":
        return tuple((field["name"], _layout(field["type"])) for field in schema["fields"])
    return schema.get("logicalType", schema["type"])


def _bundled_statuses() -> tuple[ShipmentStatus, ...]:
    """The status enum's symbols in index order, once the schema is known to match the layout."""
    schema = tracking_event_schema()
    if _layout(schema) != _BUNDLED_LAYOUT:
        raise RuntimeError(f"{TRACKING_EVENT}.avsc changed: update read_bundled to match it")
    (status,) = (field["type"] for field in schema["fields"] if field["name"] == "status")
    return tuple(ShipmentStatus(symbol) for symbol in status["symbols"])


_STATUSES = _bundled_statuses()
_MAX_VARINT_BYTES = 10  # a 64-bit Avro long; a longer varint is garbage, not a bigger number


def _read_long(data: bytes, pos: int) -> tuple[int, int]:
    """The zigzag varint (Avro int or long) at ``pos``: (value, position after it)."""
    byte = data[pos]
    if byte < 0x80:  # most of them: lengths, union and enum indexes
        return (byte >> 1) ^ -(byte & 1), pos + 1
    start = pos
    number, shift = byte & 0x7F, 7
    while byte & 0x80:
        pos += 1
        if pos - start >= _MAX_VARINT_BYTES:
            raise ValueError(f"varint at byte {start} is longer than {_MAX_VARINT_BYTES} bytes")
        byte = data[pos]
        number |= (byte & 0x7F) << shift
        shift += 7
    return (number >> 1) ^ -(number & 1), pos + 1


def _read_string(data: bytes, pos: int) -> tuple[str, int]:
    size = data[pos]
    if size < 0x80:  # inlined one-byte length (strings under 64 bytes): -1 call per string
        size, pos = (size >> 1) ^ -(size & 1), pos + 1
    else:
        size, pos = _read_long(data, pos)
    end = pos + size
    if size < 0 or end > len(data):
        raise EOFError(f"string of {size} byte(s) at byte {pos}; {len(data) - pos} left")
    return data[pos:end].decode(), end


def _read_optional_string(data: bytes, pos: int) -> tuple[str | None, int]:
    branch = data[pos]  # a one-byte index is inlined as in _read_string
    if branch == 0:
        return None, pos + 1
    if branch == 2:  # zigzag 1
        return _read_string(data, pos + 1)
    present, pos = _read_branch(data, pos, "string")
    return _read_string(data, pos) if present else (None, pos)


def _read_branch(data: bytes, pos: int, what: str) -> tuple[bool, int]:
    """A ``[null, X]`` union's index: (whether X follows, position after the index)."""
    branch, pos = _read_long(data, pos)
    if branch not in (0, 1):
        raise ValueError(f"union index {branch} out of range for [null, {what}]")
    return branch == 1, pos


def read_bundled(data: bytes, pos: int) -> tuple[TrackingEvent, int]:
    """A record of the bundled schema read by hand, straight into a ``TrackingEvent``.

    The common case (the writer is the bundled schema) without fastavro's generic per-field
    dispatch and the dict in between: ``decode`` went from 20 to 13 µs a record on the bench
    workload (schemaless_reader alone was 12, record_to_event 6). Bad bytes raise what fastavro
    raises (EOFError, IndexError, ValueError, OverflowError) and the checks are record_to_event's;
    stricter only where fastavro reads garbage: a negative union or enum index (which it takes,
    by Python's negative indexing, as a branch or symbol from the end) and a varint longer than
    a 64-bit long. Such a record is dead-lettered as ``decode`` instead of processed.
    """
    event_id, pos = _read_string(data, pos)
    store_id, pos = _read_string(data, pos)
    order_id, pos = _read_string(data, pos)
    fulfillment_id, pos = _read_string(data, pos)
    carrier, pos = _read_optional_string(data, pos)
    tracking_number, pos = _read_optional_string(data, pos)
    symbol, pos = _read_long(data, pos)
    if not 0 <= symbol < len(_STATUSES):
        raise ValueError(f"enum index {symbol} out of range for ShipmentStatus")
    millis, pos = _read_long(data, pos)
    occurred_at = EPOCH + millis * MILLISECOND
    message, pos = _read_optional_string(data, pos)
    location = None
    present, pos = _read_branch(data, pos, "Location")
    if present:
        city, pos = _read_optional_string(data, pos)
        state, pos = _read_optional_string(data, pos)
        country, pos = _read_optional_string(data, pos)
        postal_code, pos = _read_optional_string(data, pos)
        location = Location(city, state, country, postal_code)
    estimated_delivery_date = None
    present, pos = _read_branch(data, pos, "date")
    if present:
        days, pos = _read_long(data, pos)
        estimated_delivery_date = EPOCH_DATE + timedelta(days=days)
    event = TrackingEvent(
        event_id=required_id(event_id, "eventId"),
        store_id=required_id(store_id, "storeId"),
        order_id=required_id(order_id, "orderId"),
        fulfillment_id=required_id(fulfillment_id, "fulfillmentId"),
        status=_STATUSES[symbol],
        occurred_at=occurred_at,
        carrier=carrier,
        tracking_number=tracking_number,
        message=message,
        location=location,
        estimated_delivery_date=estimated_delivery_date,
    )
    return event, pos

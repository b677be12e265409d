"""Test-only encoders: ``TrackingEvent`` → Avro bytes in the topic's two framings, for tests, the
devkit, the benchmarks and the reliability suite (the consumer only decodes; its decoders are in
``consumer.serde.events``).
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro

from consumer.kafka.schema_registry import SchemaReference
from consumer.model import TrackingEvent
from consumer.serde.framing import MAGIC_GUID, MAGIC_ID, schema_key
from consumer.serde.schemas import tracking_event_schema

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def encode_raw(event: TrackingEvent, schema: dict[str, Any] | None = None) -> bytes:
    """Plain Avro binary of ``event``, written with ``schema`` (parsed) or the bundled one."""
    out = io.BytesIO()
    fastavro.schemaless_writer(
        out, tracking_event_schema() if schema is None else schema, event_to_record(event)
    )
    return out.getvalue()


def encode_confluent(
    event: TrackingEvent, reference: SchemaReference, schema: dict[str, Any] | None = None
) -> bytes:
    """Confluent wire format of ``event`` (schema prefix, then Avro); ``schema`` must be the one
    registered as ``reference`` (the bundled one by default)."""
    return schema_prefix(reference) + encode_raw(event, schema)


def schema_prefix(reference: SchemaReference) -> bytes:
    """The bytes naming ``reference``: a value's prefix, or a ``__value_schema_id`` header."""
    key = schema_key(reference)
    if isinstance(key, int):
        return bytes([MAGIC_ID]) + key.to_bytes(4, "big")
    return bytes([MAGIC_GUID]) + key


def event_to_record(event: TrackingEvent) -> dict[str, Any]:
    """The Avro record (field names of the schema) for ``event``; sub-millisecond time is dropped.

    ``occurredAt`` is written as epoch milliseconds computed here, not by fastavro, which would
    read a naive datetime as local time: a naive ``occurred_at`` is refused instead.
    """
    if event.occurred_at.tzinfo is None:
        raise ValueError("TrackingEvent.occurred_at must be timezone-aware")
    location = event.location
    return {
        "eventId": event.event_id,
        "storeId": event.store_id,
        "orderId": event.order_id,
        "fulfillmentId": event.fulfillment_id,
        "carrier": event.carrier,
        "trackingNumber": event.tracking_number,
        "status": event.status.value,
        "occurredAt": (event.occurred_at - _EPOCH) // _MILLISECOND,
        "message": event.message,
        "location": None
        if location is None
        else {
            "city": location.city,
            "state": location.state,
            "country": location.country,
            "postalCode": location.postal_code,
        },
        "estimatedDeliveryDate": event.estimated_delivery_date,
    }

"""What Redo should receive for a stream of scans: an oracle written independently of the
consumer's own mapping, for the tests, the demo and the benchmark."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from consumer.model import ShipmentStatus, TrackingEvent


def status_body(event: TrackingEvent) -> dict[str, Any]:
    """The request body of the status call a scan causes (Avro keeps milliseconds)."""
    at = event.occurred_at
    body: dict[str, Any] = {
        "status": event.status.value,
        "datetime": at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z",
    }
    if event.message is not None:
        body["message"] = event.message
    if event.location is not None:
        location = {
            "city": event.location.city,
            "state": event.location.state,
            "country": event.location.country,
            "postalCode": event.location.postal_code,
        }
        body["location"] = {k: v for k, v in location.items() if v is not None}
    if event.estimated_delivery_date is not None:
        body["estimatedDeliveryDate"] = f"{event.estimated_delivery_date}T00:00:00.000Z"
    return body


def expected_status_bodies(events: Iterable[TrackingEvent]) -> dict[str, list[dict[str, Any]]]:
    """Per fulfillment, in order, the status calls of ``FORWARD_SCANS=all`` (every scan but
    ``unknown``), for streams in which each scan carries its ETA."""
    expected: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        if event.status is not ShipmentStatus.UNKNOWN:
            expected[event.fulfillment_id].append(status_body(event))
    return expected

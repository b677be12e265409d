"""Synthetic but plausible tracking streams: each shipment walks pre_transit → in_transit scans
→ out_for_delivery → delivered, with a carrier ETA, interleaved across shipments by time."""

from __future__ import annotations

import random
import zlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from consumer.model import Location, ShipmentStatus, TrackingEvent

CITIES = (("Memphis", "TN"), ("Louisville", "KY"), ("Chicago", "IL"), ("Dallas", "TX"))


def shipment_scans(
    fulfillment_id: str,
    start: datetime,
    count: int,
    rng: random.Random,
    *,
    store_id: str = "store-1",
    carrier: str = "UPS",
) -> list[TrackingEvent]:
    """``count`` scans of one shipment, a few hours apart, ending delivered when count >= 3."""
    eta = (start + timedelta(days=4)).date()
    scans: list[TrackingEvent] = []
    at = start
    for index in range(count):
        if index == 0:
            status = ShipmentStatus.PRE_TRANSIT
        elif count >= 3 and index == count - 1:
            status = ShipmentStatus.DELIVERED
        elif count >= 3 and index == count - 2:
            status = ShipmentStatus.OUT_FOR_DELIVERY
        else:
            status = ShipmentStatus.IN_TRANSIT
        city, state = rng.choice(CITIES)
        scans.append(
            TrackingEvent(
                event_id=f"{fulfillment_id}-scan-{index}",
                store_id=store_id,
                order_id=f"order-{fulfillment_id}",
                fulfillment_id=fulfillment_id,
                status=status,
                occurred_at=at,
                carrier=carrier,
                tracking_number=f"1Z{zlib.crc32(fulfillment_id.encode()):012d}",
                message=f"{status.value.replace('_', ' ').capitalize()} at {city}",
                location=Location(city=city, state=state, country="US", postal_code=None),
                estimated_delivery_date=eta,
            )
        )
        at += timedelta(hours=rng.uniform(2, 20))
    return scans


def tracking_stream(
    shipments: int,
    scans_per_shipment: int,
    *,
    seed: int = 7,
    start: datetime | None = None,
    unknown_every: int = 0,
    prefix: str = "ful",
) -> list[TrackingEvent]:
    """A whole stream in event-time order; every ``unknown_every``-th scan has status unknown.

    Without ``start`` it is a recent backlog that ends a minute ago: no scan is dated in the
    future, which the consumer would dead-letter (``MAX_CLOCK_SKEW``)."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    begin = start or now - timedelta(days=2)
    events: list[TrackingEvent] = []
    for number in range(shipments):
        offset = timedelta(minutes=rng.uniform(0, 600))
        events.extend(
            shipment_scans(f"{prefix}-{number:05d}", begin + offset, scans_per_shipment, rng)
        )
    events.sort(key=lambda event: event.occurred_at)
    overshoot = events[-1].occurred_at - (now - timedelta(minutes=1)) if events else timedelta(0)
    if start is None and overshoot > timedelta(0):
        events = [replace(event, occurred_at=event.occurred_at - overshoot) for event in events]
    if unknown_every:
        events = [
            replace(event, status=ShipmentStatus.UNKNOWN) if i % unknown_every == 0 else event
            for i, event in enumerate(events, start=1)
        ]
    return events

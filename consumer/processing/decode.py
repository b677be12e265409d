"""Decode: a record's bytes to the ``TrackingEvent`` it carries, checked before it is believed.

Contract: ``event`` decodes on the loop and raises ``DecodeError`` (bad bytes, or a key that is
not the event's ``fulfillmentId``) or ``SchemaPending`` (the writer schema is not cached yet).
``fetch_and_decode`` is the pending path: it fetches the schema, retried with
``RetryPolicy.backoff`` while the registry is unreachable, and returns the event, or None when
the partition was revoked first; ``DecodeError`` when the registry says the schema does not
exist. ``future_error`` says why a decoded event is dated too far ahead to be believed.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from consumer.delivery.retry import RetryPolicy, sleep_unless
from consumer.errors import DecodeError, SchemaPending, SchemaRegistryUnavailable
from consumer.kafka.records import RawRecord
from consumer.model import TrackingEvent
from consumer.processing.settings import Clock
from consumer.rules import later
from consumer.serde.events import EventDecoder

log = logging.getLogger(__name__)


class Decode:
    def __init__(
        self,
        decoder: EventDecoder,
        retry: RetryPolicy,
        max_clock_skew: timedelta,
        wall_clock: Clock,
    ) -> None:
        self._decoder = decoder
        self._retry = retry
        self._max_clock_skew = max_clock_skew
        self._now = wall_clock

    def event(self, record: RawRecord) -> TrackingEvent:
        event = self._decoder.decode(record.value or b"", record.headers)
        if record.key != event.fulfillment_id.encode():
            raise DecodeError("record key does not match the event's fulfillmentId")
        return event

    def future_error(self, event: TrackingEvent) -> str | None:
        """Why a scan is dated too far ahead to be believed, or None.

        Past the wall clock plus ``MAX_CLOCK_SKEW`` it is dead-lettered: as the partition's
        stream time it would make every other shipment look stalled or late."""
        limit = later(self._now(), self._max_clock_skew)
        if event.occurred_at <= limit:
            return None
        return (
            f"occurredAt {event.occurred_at.isoformat()} is later than the wall clock plus "
            f"MAX_CLOCK_SKEW ({limit.isoformat()})"
        )

    async def fetch_and_decode(
        self, record: RawRecord, pending: SchemaPending
    ) -> TrackingEvent | None:
        """The decoded event once its schema is fetched; None when the partition was revoked
        first. ``DecodeError`` when the registry says the schema does not exist."""
        attempt = 0
        while not record.work.revoked:
            try:
                await self._decoder.fetch_schema(pending.reference)
                return self.event(record)
            except (SchemaRegistryUnavailable, SchemaPending) as exc:
                delay = self._retry.backoff(attempt)
                log.warning("schema registry unavailable, retrying in %.1fs: %s", delay, exc)
                attempt += 1
                await sleep_unless(delay, lambda: record.work.revoked)
        return None

"""Decode: bytes to a checked event; a pending schema fetched with backoff until revoked."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import pytest

from consumer.errors import DecodeError, SchemaPending, SchemaRegistryUnavailable
from consumer.kafka.schema_registry import SchemaReference
from consumer.model import TrackingEvent
from consumer.processing.decode import Decode
from consumer.serde.events import RawDecoder
from devkit.encoding import encode_raw
from tests.unit.processing.fakes import FAST, NOW, partition_work, raw, scan

REFERENCE = SchemaReference(schema_id=7)


@dataclass
class FlakyRegistry:
    """A decoder whose schema is pending until fetched; the registry is down ``outages`` times."""

    outages: int = 0
    fetches: int = 0
    cached: bool = False

    def decode(self, value: bytes, headers: Sequence[tuple[str, bytes]]) -> TrackingEvent:
        if not self.cached:
            raise SchemaPending(REFERENCE)
        return RawDecoder().decode(value, headers)

    async def fetch_schema(self, reference: SchemaReference) -> None:
        self.fetches += 1
        if self.fetches <= self.outages:
            raise SchemaRegistryUnavailable("registry down")
        self.cached = True


def _decode(decoder: object = None) -> Decode:
    return Decode(decoder or RawDecoder(), FAST, timedelta(minutes=5), lambda: NOW)  # type: ignore[arg-type]


def test_a_record_decodes_to_its_event() -> None:
    event = scan("f1", NOW)
    assert _decode().event(raw(partition_work(), 0, b"f1", encode_raw(event))) == event


def test_a_key_that_is_not_the_events_fulfillment_is_a_decode_error() -> None:
    record = raw(partition_work(), 0, b"other", encode_raw(scan("f1", NOW)))
    with pytest.raises(DecodeError, match="record key does not match"):
        _decode().event(record)


def test_a_scan_past_the_clock_skew_is_named_and_one_within_it_is_not() -> None:
    decode = _decode()
    assert decode.future_error(scan("f1", NOW + timedelta(minutes=4))) is None
    error = decode.future_error(scan("f1", NOW + timedelta(hours=1)))
    assert error is not None and "MAX_CLOCK_SKEW" in error


def test_a_pending_schema_is_fetched_through_registry_outages() -> None:
    registry = FlakyRegistry(outages=2)
    event = scan("f1", NOW)
    record = raw(partition_work(), 0, b"f1", encode_raw(event))
    decode = _decode(registry)
    with pytest.raises(SchemaPending) as pending:
        decode.event(record)
    assert asyncio.run(decode.fetch_and_decode(record, pending.value)) == event
    assert registry.fetches == 3


def test_a_revoke_stops_the_fetch() -> None:
    work = partition_work()
    record = raw(work, 0, b"f1", encode_raw(scan("f1", NOW)))
    registry = FlakyRegistry(outages=1_000_000)

    async def run() -> TrackingEvent | None:
        fetching = asyncio.create_task(
            _decode(registry).fetch_and_decode(record, SchemaPending(REFERENCE))
        )
        await asyncio.sleep(0.02)
        work.revoked = True
        return await fetching

    assert asyncio.run(run()) is None
    assert registry.fetches >= 1


def test_a_fetched_record_whose_key_does_not_match_is_a_decode_error() -> None:
    record = raw(partition_work(), 0, b"other", encode_raw(scan("f1", NOW)))
    with pytest.raises(DecodeError):
        asyncio.run(_decode(FlakyRegistry()).fetch_and_decode(record, SchemaPending(REFERENCE)))

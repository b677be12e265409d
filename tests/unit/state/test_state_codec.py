"""The changelog's state records: every field survives the round trip, bad bytes are refused."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.errors import StateDecodeError
from consumer.model import ShipmentStatus
from consumer.rules import ShipmentState
from consumer.serde.schemas import load_schema
from consumer.state.codec import (
    FORMAT_V1,
    FORMAT_V2,
    DeadlineHint,
    deadline_hint,
    decode_state,
    encode_state,
)

AT = datetime(2024, 5, 1, 12, 30, 15, 250_000, tzinfo=UTC)

FULL = ShipmentState(
    fulfillment_id="ful-1",
    store_id="store-1",
    order_id="order-1",
    last_scan_at=AT,
    carrier="UPS",
    last_status=ShipmentStatus.OUT_FOR_DELIVERY,
    last_status_sent=ShipmentStatus.IN_TRANSIT,
    current_eta=date(2024, 5, 4),
    reference_eta=date(2024, 5, 3),
    notified_delayed=(date(2024, 5, 2), date(2024, 5, 4)),
    notified_early=(date(2024, 5, 1),),
    stall_notified=True,
    terminal_at=AT + timedelta(hours=3),
    recent_event_ids=("e1", "e2", "e3"),
)


def test_every_field_survives_the_round_trip() -> None:
    assert decode_state(encode_state(FULL)) == FULL


def test_a_fresh_state_with_only_the_required_fields_round_trips() -> None:
    fresh = ShipmentState("ful-2", "store-2", "order-2", last_scan_at=AT)
    assert decode_state(encode_state(fresh)) == fresh


def test_times_come_back_in_utc_whatever_zone_they_were_written_in() -> None:
    eastern = AT.astimezone(timezone(timedelta(hours=-5)))
    decoded = decode_state(encode_state(ShipmentState("f", "s", "o", last_scan_at=eastern)))
    assert decoded.last_scan_at == AT
    assert decoded.last_scan_at.utcoffset() == timedelta(0)


def test_the_record_starts_with_its_format_byte() -> None:
    assert encode_state(FULL)[0] == FORMAT_V2


def test_a_format_1_record_an_earlier_version_wrote_still_reads() -> None:
    record = {
        "fulfillmentId": FULL.fulfillment_id,
        "storeId": FULL.store_id,
        "orderId": FULL.order_id,
        "lastScanAt": FULL.last_scan_at,
        "carrier": FULL.carrier,
        "lastStatus": FULL.last_status,
        "lastStatusSent": FULL.last_status_sent,
        "currentEta": FULL.current_eta,
        "referenceEta": FULL.reference_eta,
        "notifiedDelayed": list(FULL.notified_delayed),
        "notifiedEarly": list(FULL.notified_early),
        "stallNotified": FULL.stall_notified,
        "terminalAt": FULL.terminal_at,
        "recentEventIds": list(FULL.recent_event_ids),
    }
    out = io.BytesIO(bytes([FORMAT_V1]))
    out.seek(1)
    fastavro.schemaless_writer(out, load_schema("shipment_state"), record)
    assert decode_state(out.getvalue()) == FULL
    assert deadline_hint(out.getvalue())[0] == 0


def test_the_deadline_hint_travels_with_the_record_and_is_optional() -> None:
    assert deadline_hint(encode_state(FULL, DeadlineHint(7, 1_700_000_000_000_000))) == (
        DeadlineHint(7, 1_700_000_000_000_000)
    )
    assert deadline_hint(encode_state(FULL))[0] == 0
    assert decode_state(encode_state(FULL, DeadlineHint(7, 0))) == FULL


def test_event_ids_that_start_with_the_fulfillment_id_are_stored_without_it() -> None:
    derived = replace(FULL, recent_event_ids=tuple(f"ful-1-scan-{i}" for i in range(8)))
    unrelated = replace(FULL, recent_event_ids=tuple(f"xyz-1-scan-{i}" for i in range(8)))
    assert decode_state(encode_state(derived)) == derived
    assert len(encode_state(derived)) == len(encode_state(unrelated)) - 8 * len("ful-1")


def test_a_state_too_long_for_format_2_is_written_as_format_1() -> None:
    huge = replace(FULL, order_id="o" * 40_000)
    assert encode_state(huge)[0] == FORMAT_V1
    assert decode_state(encode_state(huge)) == huge


def test_a_record_in_the_stores_own_framing_decodes_from_its_start() -> None:
    assert decode_state(b"sixteen bytes..." + encode_state(FULL), 16) == FULL


@pytest.mark.parametrize(
    "value",
    [
        b"",
        bytes([99]) + encode_state(FULL)[1:],
        encode_state(FULL)[:20],
        encode_state(FULL)[:-1] + b"?",
        bytes([FORMAT_V1]) + b"\xff" * 8,
    ],
    ids=["empty", "unknown-format", "truncated", "corrupted", "garbage"],
)
def test_unreadable_bytes_raise_state_decode_error(value: bytes) -> None:
    with pytest.raises(StateDecodeError):
        decode_state(value)


@pytest.mark.parametrize(
    "value",
    [b"", bytes([99]) + encode_state(FULL)[1:], encode_state(FULL)[:3], encode_state(FULL)[:-1]],
    ids=["empty", "unknown-format", "truncated-header", "truncated"],
)
def test_a_restore_finds_a_broken_record_without_decoding_it(value: bytes) -> None:
    with pytest.raises(StateDecodeError):
        deadline_hint(value)


def test_a_status_this_version_does_not_know_reads_as_unknown() -> None:
    """Statuses are strings in the changelog so a newer writer's status cannot break a reader."""
    record = {
        "fulfillmentId": "f",
        "storeId": "s",
        "orderId": "o",
        "lastScanAt": AT,
        "lastStatus": "teleported",
        "lastStatusSent": "in_transit",
    }
    out = io.BytesIO(bytes([FORMAT_V1]))
    out.seek(1)
    fastavro.schemaless_writer(out, load_schema("shipment_state"), record)
    decoded = decode_state(out.getvalue())
    assert decoded.last_status is ShipmentStatus.UNKNOWN
    assert decoded.last_status_sent is ShipmentStatus.IN_TRANSIT


_millis = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000))
_dates = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1))
_text = st.text(min_size=1, max_size=20)
_statuses = st.none() | st.sampled_from(ShipmentStatus)


@settings(deadline=None)  # behaviour, not speed: a loaded machine must not fail it
@given(
    st.builds(
        ShipmentState,
        fulfillment_id=_text,
        store_id=_text,
        order_id=_text,
        last_scan_at=_millis,
        carrier=st.none() | _text,
        last_status=_statuses,
        last_status_sent=_statuses,
        current_eta=st.none() | _dates,
        reference_eta=st.none() | _dates,
        notified_delayed=st.lists(_dates, max_size=16).map(tuple),
        notified_early=st.lists(_dates, max_size=16).map(tuple),
        stall_notified=st.booleans(),
        terminal_at=st.none() | _millis,
        recent_event_ids=st.lists(_text, max_size=64).map(tuple),
    )
)
def test_any_state_round_trips(state: ShipmentState) -> None:
    assert decode_state(encode_state(state)) == state

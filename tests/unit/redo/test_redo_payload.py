"""The request path and JSON body built for a Redo call."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumer.model import AutomationEvent, CallKind, Location, ShipmentStatus
from consumer.redo.payload import request_body, request_path
from devkit.sandbox import schema
from tests.support.redo_calls import make_call


def test_path_has_each_id_in_its_segment() -> None:
    assert request_path(make_call()) == (
        "/stores/store-1/orders/order-1/fulfillments/ful-1/shipment-status"
    )


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("a/b", "a%2Fb"),
        ("#1001?x=1", "%231001%3Fx%3D1"),
        ("100%", "100%25"),
        ("a b", "a%20b"),
        ("commande-é-東京", "commande-%C3%A9-%E6%9D%B1%E4%BA%AC"),
    ],
)
def test_path_percent_encodes_every_reserved_or_unicode_character(raw: str, encoded: str) -> None:
    path = request_path(make_call(store_id=raw, order_id=raw, fulfillment_id=raw))
    assert path == f"/stores/{encoded}/orders/{encoded}/fulfillments/{encoded}/shipment-status"


def test_minimal_body_has_only_status_and_datetime() -> None:
    assert request_body(make_call()) == {
        "status": "in_transit",
        "datetime": "2024-05-01T12:00:00.000Z",
    }


def test_full_body() -> None:
    call = make_call(
        kind=CallKind.EVENT,
        status=AutomationEvent.DELAYED.value,
        message="Expected delivery moved to May 3",
        location=Location(city="Memphis", state="TN", country="US", postal_code="38118"),
        estimated_delivery_date=date(2024, 5, 3),
    )
    assert request_body(call) == {
        "status": "delayed",
        "datetime": "2024-05-01T12:00:00.000Z",
        "message": "Expected delivery moved to May 3",
        "location": {"city": "Memphis", "state": "TN", "country": "US", "postalCode": "38118"},
        "estimatedDeliveryDate": "2024-05-03T00:00:00.000Z",
    }


def test_datetime_is_utc_with_milliseconds_and_z() -> None:
    plus_two = timezone(timedelta(hours=2))
    at = datetime(2024, 5, 1, 14, 30, 5, 123987, tzinfo=plus_two)
    assert request_body(make_call(at=at))["datetime"] == "2024-05-01T12:30:05.123Z"


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        request_body(make_call(at=datetime(2024, 5, 1, 12, 0)))


def test_eta_is_midnight_utc_of_its_date() -> None:
    body = request_body(make_call(estimated_delivery_date=date(2024, 12, 31)))
    assert body["estimatedDeliveryDate"] == "2024-12-31T00:00:00.000Z"


def test_unknown_location_fields_are_omitted() -> None:
    body = request_body(make_call(location=Location(city="Lyon", postal_code=None)))
    assert body["location"] == {"city": "Lyon"}


def test_location_without_any_field_is_omitted() -> None:
    assert "location" not in request_body(make_call(location=Location()))


def test_empty_message_is_sent_as_given() -> None:
    assert request_body(make_call(message=""))["message"] == ""


def test_full_body_is_valid_against_the_request_schema() -> None:
    call = make_call(
        message="Out for delivery",
        location=Location(city="Memphis", country="US"),
        estimated_delivery_date=date(2024, 5, 3),
    )
    assert schema.first_error(schema.REQUEST, request_body(call)) is None


_STATUSES = [s.value for s in ShipmentStatus if s is not ShipmentStatus.UNKNOWN] + [
    e.value for e in AutomationEvent
]
_text = st.one_of(st.none(), st.text(max_size=20))


@given(
    status=st.sampled_from(_STATUSES),
    at=st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.timezones()
    ),
    message=_text,
    location=st.one_of(st.none(), st.builds(Location, _text, _text, _text, _text)),
    eta=st.one_of(st.none(), st.dates(min_value=date(1970, 1, 1), max_value=date(2100, 1, 1))),
)
def test_every_call_body_is_valid_against_the_request_schema(
    status: str, at: datetime, message: str | None, location: Location | None, eta: date | None
) -> None:
    call = make_call(
        status=status, at=at, message=message, location=location, estimated_delivery_date=eta
    )
    body = request_body(call)
    assert schema.first_error(schema.REQUEST, body) is None
    assert None not in body.values()
    assert None not in body.get("location", {}).values()

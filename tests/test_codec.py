"""The event codec: both framings, schema evolution, and a clear DecodeError for every bad value."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import given
from hypothesis import strategies as st
from schema_registry_server import RegistryState, running_registry

from consumer.avro_files import load_schema_file, load_schema_json, parse_schema_document
from consumer.codec import (
    ConfluentDecoder,
    RawDecoder,
    build_decoder,
    encode_confluent,
    encode_raw,
    event_to_record,
    record_to_event,
)
from consumer.config import Settings
from consumer.errors import ConfigError, DecodeError, SchemaRegistryError
from consumer.model import Location, ShipmentStatus, TrackingEvent
from consumer.schema_registry import SchemaRegistryClient, SchemaRegistryUnavailable

DATA = Path(__file__).parent / "data"
V1_SCHEMA = DATA / "tracking_event_v1.avsc"
NEWER_SCHEMA = DATA / "tracking_event_v3_newer.avsc"
PLAIN_TYPES_SCHEMA = DATA / "tracking_event_plain_types.avsc"

FULL_EVENT = TrackingEvent(
    event_id="evt-0001",
    store_id="store-42",
    order_id="order #1001/ä",
    fulfillment_id="ful-9",
    status=ShipmentStatus.OUT_FOR_DELIVERY,
    occurred_at=datetime(2024, 11, 5, 14, 30, 15, 123000, tzinfo=UTC),
    carrier="UPS",
    tracking_number="1Z999AA10123456784",
    message="Out for delivery — driver 7",
    location=Location(city="Provo", state="UT", country="US", postal_code="84601"),
    estimated_delivery_date=date(2024, 11, 6),
)
BARE_EVENT = TrackingEvent(
    event_id="evt-0002",
    store_id="store-42",
    order_id="order-1",
    fulfillment_id="ful-9",
    status=ShipmentStatus.PRE_TRANSIT,
    occurred_at=datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
)


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": "localhost:9092",
        "kafka_topic": "tracking",
        "kafka_group_id": "tracking-consumer",
        "redo_api_secret": "secret",
        **overrides,
    }
    return Settings.model_validate(values)


def write_with(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, record)
    return out.getvalue()


@pytest.fixture
def registry() -> Iterator[tuple[SchemaRegistryClient, RegistryState]]:
    with running_registry() as (url, state), SchemaRegistryClient(url) as client:
        yield client, state


# --- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("event", [FULL_EVENT, BARE_EVENT], ids=["all-fields", "all-null"])
def test_raw_round_trip(event: TrackingEvent) -> None:
    decoded = RawDecoder().decode(encode_raw(event))

    assert decoded == event
    assert decoded.occurred_at.tzinfo is UTC


@pytest.mark.parametrize("event", [FULL_EVENT, BARE_EVENT], ids=["all-fields", "all-null"])
def test_confluent_round_trip(
    registry: tuple[SchemaRegistryClient, RegistryState], event: TrackingEvent
) -> None:
    client, _ = registry
    schema_id = client.register("tracking-value", load_schema_json("tracking_event"))

    assert ConfluentDecoder(client).decode(encode_confluent(event, schema_id)) == event


@pytest.mark.parametrize("status", list(ShipmentStatus))
def test_every_status_round_trips(status: ShipmentStatus) -> None:
    event = replace(BARE_EVENT, status=status)

    assert RawDecoder().decode(encode_raw(event)).status is status


def test_location_with_every_part_null_stays_a_location() -> None:
    event = replace(BARE_EVENT, location=Location())

    assert RawDecoder().decode(encode_raw(event)).location == Location()


_text = st.text(max_size=40)
_optional_text = st.none() | _text
_events = st.builds(
    TrackingEvent,
    event_id=st.text(min_size=1, max_size=40).filter(str.strip),
    store_id=st.text(min_size=1, max_size=40).filter(str.strip),
    order_id=st.text(min_size=1, max_size=40).filter(str.strip),
    fulfillment_id=st.text(min_size=1, max_size=40).filter(str.strip),
    status=st.sampled_from(ShipmentStatus),
    occurred_at=st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ).map(lambda dt: dt.replace(microsecond=dt.microsecond // 1000 * 1000)),
    carrier=_optional_text,
    tracking_number=_optional_text,
    message=_optional_text,
    location=st.none()
    | st.builds(
        Location,
        city=_optional_text,
        state=_optional_text,
        country=_optional_text,
        postal_code=_optional_text,
    ),
    estimated_delivery_date=st.none() | st.dates(),
)


@given(_events)
def test_any_event_round_trips(event: TrackingEvent) -> None:
    assert RawDecoder().decode(encode_raw(event)) == event


def test_occurred_at_in_another_zone_is_encoded_as_the_same_instant() -> None:
    plus_two = timezone(timedelta(hours=2))
    local = FULL_EVENT.occurred_at.astimezone(plus_two)
    event = replace(FULL_EVENT, occurred_at=local)

    decoded = RawDecoder().decode(encode_raw(event))

    assert decoded.occurred_at == FULL_EVENT.occurred_at
    assert decoded.occurred_at.tzinfo is UTC


def test_naive_occurred_at_is_refused_when_encoding() -> None:
    event = replace(FULL_EVENT, occurred_at=datetime(2024, 1, 1))

    with pytest.raises(ValueError, match="timezone-aware"):
        encode_raw(event)


def test_naive_datetime_in_a_record_is_read_as_utc() -> None:
    record = event_to_record(FULL_EVENT) | {"occurredAt": datetime(2024, 11, 5, 14, 30)}

    assert record_to_event(record).occurred_at == datetime(2024, 11, 5, 14, 30, tzinfo=UTC)


# --- schema evolution --------------------------------------------------------------------------


def test_older_writer_without_location_and_eta_is_read() -> None:
    old_schema = load_schema_file(V1_SCHEMA)

    decoded = RawDecoder(old_schema).decode(encode_raw(FULL_EVENT, old_schema))

    assert decoded == replace(FULL_EVENT, location=None, estimated_delivery_date=None)


def test_older_writer_through_the_registry_is_read(
    registry: tuple[SchemaRegistryClient, RegistryState],
) -> None:
    client, _ = registry
    old_schema_id = client.register("tracking-value", json.loads(V1_SCHEMA.read_text()))
    value = encode_confluent(FULL_EVENT, old_schema_id, load_schema_file(V1_SCHEMA))

    decoded = ConfluentDecoder(client).decode(value)

    assert decoded.location is None
    assert decoded.estimated_delivery_date is None
    assert decoded.message == FULL_EVENT.message


def test_unknown_status_from_a_newer_writer_becomes_unknown(
    registry: tuple[SchemaRegistryClient, RegistryState],
) -> None:
    client, _ = registry
    newer_schema = load_schema_file(NEWER_SCHEMA)
    record = event_to_record(FULL_EVENT) | {"status": "held_at_customs", "weightGrams": 1200}
    schema_id = client.register("tracking-value", json.loads(NEWER_SCHEMA.read_text()))
    body = write_with(newer_schema, record)

    raw = RawDecoder(newer_schema).decode(body)
    confluent = ConfluentDecoder(client).decode(b"\x00" + schema_id.to_bytes(4, "big") + body)

    assert raw == confluent == replace(FULL_EVENT, status=ShipmentStatus.UNKNOWN)


def test_writer_without_logical_types_is_read() -> None:
    plain_schema = load_schema_file(PLAIN_TYPES_SCHEMA)
    eta_days = (date(2024, 11, 6) - date(1970, 1, 1)).days
    record = event_to_record(FULL_EVENT) | {"estimatedDeliveryDate": eta_days}

    assert RawDecoder(plain_schema).decode(write_with(plain_schema, record)) == FULL_EVENT


def test_incompatible_writer_is_a_decode_error() -> None:
    schema = parse_schema_document(
        {"type": "record", "name": "Other", "fields": [{"name": "x", "type": "string"}]}, "test"
    )

    with pytest.raises(DecodeError, match="does not decode"):
        RawDecoder(schema).decode(write_with(schema, {"x": "hello"}))


# --- malformed values --------------------------------------------------------------------------


def test_every_truncation_is_a_decode_error() -> None:
    value = encode_raw(FULL_EVENT)

    for length in range(len(value)):
        with pytest.raises(DecodeError, match="does not decode"):
            RawDecoder().decode(value[:length])


@pytest.mark.parametrize(
    "garbage",
    [b"\xff" * 40, b"\x00\x00\x00\x00", b"\x02e\x02s\x02o\x02f\x00\x00\x7f", b"hello world!"],
)
def test_garbage_is_a_decode_error(garbage: bytes) -> None:
    with pytest.raises(DecodeError):
        RawDecoder().decode(garbage)


_NEWER_WRITER = load_schema_file(NEWER_SCHEMA)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_or_raise_decode_error(value: bytes) -> None:
    """Whatever fastavro raises on bad bytes, only DecodeError escapes (with or without
    resolution from another writer schema)."""
    for decoder in (RawDecoder(), RawDecoder(_NEWER_WRITER)):
        with contextlib.suppress(DecodeError):
            decoder.decode(value)


def test_trailing_bytes_are_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="3 trailing byte"):
        RawDecoder().decode(encode_raw(FULL_EVENT) + b"abc")


def test_trailing_bytes_after_confluent_body_are_a_decode_error(
    registry: tuple[SchemaRegistryClient, RegistryState],
) -> None:
    client, _ = registry
    schema_id = client.register("tracking-value", load_schema_json("tracking_event"))

    with pytest.raises(DecodeError, match="1 trailing byte"):
        ConfluentDecoder(client).decode(encode_confluent(FULL_EVENT, schema_id) + b"\x00")


@pytest.mark.parametrize(
    ("field", "avro_name"),
    [
        ("event_id", "eventId"),
        ("store_id", "storeId"),
        ("order_id", "orderId"),
        ("fulfillment_id", "fulfillmentId"),
    ],
)
@pytest.mark.parametrize("blank", ["", "  "])
def test_empty_id_is_a_decode_error(field: str, avro_name: str, blank: str) -> None:
    event = replace(FULL_EVENT, **{field: blank})  # type: ignore[arg-type]

    with pytest.raises(DecodeError, match=f"field {avro_name} is empty"):
        RawDecoder().decode(encode_raw(event))


@pytest.mark.parametrize("magic", [1, 7])
def test_other_magic_bytes_are_refused(
    registry: tuple[SchemaRegistryClient, RegistryState], magic: int
) -> None:
    client, state = registry
    value = bytes([magic]) + encode_confluent(FULL_EVENT, 1)[1:]

    with pytest.raises(DecodeError, match=f"magic byte {magic}; only magic byte 0"):
        ConfluentDecoder(client).decode(value)
    assert state.get_requests() == []


@pytest.mark.parametrize("value", [b"", b"\x00", b"\x00\x00\x00\x01"])
def test_too_short_confluent_value_is_a_decode_error(
    registry: tuple[SchemaRegistryClient, RegistryState], value: bytes
) -> None:
    with pytest.raises(DecodeError, match=f"{len(value)} byte\\(s\\) long"):
        ConfluentDecoder(registry[0]).decode(value)


def test_unknown_schema_id_is_a_decode_error(
    registry: tuple[SchemaRegistryClient, RegistryState],
) -> None:
    with pytest.raises(SchemaRegistryError, match="unknown schema id 4242"):
        ConfluentDecoder(registry[0]).decode(encode_confluent(FULL_EVENT, 4242))


def test_truncated_confluent_body_names_the_schema_id(
    registry: tuple[SchemaRegistryClient, RegistryState],
) -> None:
    client, _ = registry
    schema_id = client.register("tracking-value", load_schema_json("tracking_event"))

    with pytest.raises(DecodeError, match=f"schema id {schema_id}: Avro body does not decode"):
        ConfluentDecoder(client).decode(encode_confluent(FULL_EVENT, schema_id)[:-3])


def test_registry_down_is_not_a_decode_error() -> None:
    with running_registry() as (url, _):
        pass  # stopped: nothing listens on its port any more

    with (
        SchemaRegistryClient(url, timeout=2.0) as client,
        pytest.raises(SchemaRegistryUnavailable) as caught,
    ):
        ConfluentDecoder(client).decode(encode_confluent(FULL_EVENT, 1))
    assert not isinstance(caught.value, DecodeError)


def test_second_decode_with_the_same_id_asks_the_registry_once(
    registry: tuple[SchemaRegistryClient, RegistryState],
) -> None:
    client, state = registry
    schema_id = client.register("tracking-value", load_schema_json("tracking_event"))
    decoder = ConfluentDecoder(client)

    decoder.decode(encode_confluent(FULL_EVENT, schema_id))
    decoder.decode(encode_confluent(BARE_EVENT, schema_id))

    assert [p for m, p, _ in state.get_requests() if m == "GET"] == [f"/schemas/ids/{schema_id}"]


# --- configuration -----------------------------------------------------------------------------


def test_build_decoder_raw_reads_the_bundled_schema() -> None:
    decoder = build_decoder(settings())

    assert isinstance(decoder, RawDecoder)
    assert decoder.decode(encode_raw(FULL_EVENT)) == FULL_EVENT


def test_build_decoder_raw_uses_the_configured_writer_schema() -> None:
    decoder = build_decoder(settings(avro_writer_schema_file=V1_SCHEMA))

    assert decoder.decode(encode_raw(BARE_EVENT, load_schema_file(V1_SCHEMA))) == BARE_EVENT


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "No such file"), ("{oops", "not valid JSON"), ('{"type": "nope"}', "not a valid")],
)
def test_build_decoder_refuses_a_bad_writer_schema_file(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    path = tmp_path / "writer.avsc"
    if content is not None:
        path.write_text(content)

    with pytest.raises(ConfigError, match=f"^AVRO_WRITER_SCHEMA_FILE: .*{problem}"):
        build_decoder(settings(avro_writer_schema_file=path))


def test_build_decoder_confluent_uses_the_registry(
    registry: tuple[SchemaRegistryClient, RegistryState],
) -> None:
    client, _ = registry
    schema_id = client.register("tracking-value", load_schema_json("tracking_event"))

    decoder = build_decoder(settings(avro_framing="confluent", schema_registry_url=client.url))

    assert isinstance(decoder, ConfluentDecoder)
    assert decoder.decode(encode_confluent(FULL_EVENT, schema_id)) == FULL_EVENT


def test_build_decoder_refuses_an_unusable_registry_url() -> None:
    with pytest.raises(ConfigError, match=r"^SCHEMA_REGISTRY_URL: must be an http"):
        build_decoder(settings(avro_framing="confluent", schema_registry_url="registry:8081"))


def test_build_decoder_confluent_without_registry_url_is_a_config_error() -> None:
    unchecked = Settings.model_construct(avro_framing="confluent", schema_registry_url=None)

    with pytest.raises(ConfigError, match=r"^SCHEMA_REGISTRY_URL: "):
        build_decoder(unchecked)

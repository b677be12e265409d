"""The event codec: both framings, schema evolution, and a clear DecodeError for every bad value."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
import json
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka.schema_registry.common.serde import SchemaId
from hypothesis import given
from hypothesis import strategies as st

from consumer.config import Settings
from consumer.errors import (
    ConfigError,
    DecodeError,
    SchemaPending,
    SchemaRegistryError,
    SchemaRegistryUnavailable,
)
from consumer.kafka.schema_registry import SchemaReference, SchemaRegistry
from consumer.model import Location, ShipmentStatus, TrackingEvent
from consumer.serde.events import ConfluentDecoder, EventDecoder, RawDecoder, build_decoder
from consumer.serde.fields import MAX_ID_LENGTH, record_to_event
from consumer.serde.framing import VALUE_SCHEMA_ID_HEADER
from consumer.serde.schemas import (
    load_schema_file,
    load_schema_json,
    parse_schema_document,
    tracking_event_schema,
)
from devkit.encoding import encode_confluent, encode_raw, event_to_record, schema_prefix
from tests.support.paths import TEST_DATA
from tests.support.schema_registry_server import RegistryState, running_registry

DATA = TEST_DATA
V1_SCHEMA = DATA / "tracking_event_v1.avsc"
NEWER_SCHEMA = DATA / "tracking_event_v3_newer.avsc"
PLAIN_TYPES_SCHEMA = DATA / "tracking_event_plain_types.avsc"
TRACKING_EVENT = json.dumps(load_schema_json("tracking_event"))
GUID = "0b7e3c1a-9d2f-4c6e-8a1b-5f4e3d2c1b0a"
BY_ID = SchemaReference(schema_id=7)
BY_GUID = SchemaReference(guid=GUID)
NO_HEADERS: Sequence[tuple[str, bytes]] = ()

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
def registry() -> Iterator[tuple[str, RegistryState]]:
    """A registry serving the bundled schema as id 7 and as ``GUID``."""
    with running_registry() as (url, state):
        state.put(7, TRACKING_EVENT, guid=GUID)
        yield url, state


@asynccontextmanager
async def confluent(url: str) -> AsyncIterator[ConfluentDecoder]:
    decoder = ConfluentDecoder(SchemaRegistry(url, timeout=2.0))
    try:
        yield decoder
    finally:
        await decoder.aclose()


async def fetch_and_decode(
    decoder: EventDecoder, value: bytes, headers: Sequence[tuple[str, bytes]] = NO_HEADERS
) -> TrackingEvent:
    """What the pipeline does: decode; on SchemaPending fetch the schema and decode again."""
    try:
        return decoder.decode(value, headers)
    except SchemaPending as pending:
        await decoder.fetch_schema(pending.reference)
        return decoder.decode(value, headers)


def decoded(
    url: str, value: bytes, headers: Sequence[tuple[str, bytes]] = NO_HEADERS
) -> TrackingEvent:
    """``value`` decoded by a fresh ConfluentDecoder."""

    async def scenario() -> TrackingEvent:
        async with confluent(url) as decoder:
            return await fetch_and_decode(decoder, value, headers)

    return asyncio.run(scenario())


# --- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("event", [FULL_EVENT, BARE_EVENT], ids=["all-fields", "all-null"])
def test_raw_round_trip(event: TrackingEvent) -> None:
    decoded = RawDecoder().decode(encode_raw(event), NO_HEADERS)

    assert decoded == event
    assert decoded.occurred_at.tzinfo is UTC


@pytest.mark.parametrize("event", [FULL_EVENT, BARE_EVENT], ids=["all-fields", "all-null"])
@pytest.mark.parametrize("reference", [BY_ID, BY_GUID], ids=["id", "guid"])
@pytest.mark.parametrize("in_header", [False, True], ids=["prefix", "header"])
def test_confluent_round_trip(
    registry: tuple[str, RegistryState],
    event: TrackingEvent,
    reference: SchemaReference,
    in_header: bool,
) -> None:
    """The schema named by the value's prefix or, before a bare body, by the header."""
    if in_header:
        value, headers = encode_raw(event), [(VALUE_SCHEMA_ID_HEADER, schema_prefix(reference))]
    else:
        value, headers = encode_confluent(event, reference), []

    assert decoded(registry[0], value, headers) == event


def test_prefix_bytes_are_the_ones_confluent_kafka_writes() -> None:
    by_id = SchemaId("AVRO", schema_id=258).id_to_bytes()
    by_guid = SchemaId("AVRO", guid=GUID).guid_to_bytes()

    assert schema_prefix(SchemaReference(schema_id=258)) == by_id == b"\x00\x00\x00\x01\x02"
    assert schema_prefix(BY_GUID) == by_guid == b"\x01" + uuid.UUID(GUID).bytes


def test_header_names_the_schema_of_a_bare_body_and_the_first_one_counts(
    registry: tuple[str, RegistryState],
) -> None:
    """As in confluent_kafka's ``dual_schema_id_deserializer``: with the header, the whole value
    is the Avro body (read as a prefix, its first byte would be a bad magic byte)."""
    url, state = registry
    headers = [
        ("traceparent", b"00-abc"),
        (VALUE_SCHEMA_ID_HEADER, schema_prefix(BY_GUID)),
        (VALUE_SCHEMA_ID_HEADER, b"ignored: the first one counts"),
    ]

    assert decoded(url, encode_raw(FULL_EVENT), headers) == FULL_EVENT
    assert [p for m, p, _ in state.get_requests() if m == "GET"] == [f"/schemas/guids/{GUID}"]


def test_decode_on_a_cache_miss_asks_for_a_fetch_and_does_no_io(
    registry: tuple[str, RegistryState],
) -> None:
    url, state = registry
    value = encode_confluent(FULL_EVENT, BY_GUID)

    async def scenario() -> TrackingEvent:
        async with confluent(url) as decoder:
            with pytest.raises(SchemaPending) as pending:
                decoder.decode(value, NO_HEADERS)
            assert not isinstance(pending.value, DecodeError)
            assert pending.value.reference == BY_GUID
            assert state.get_requests() == [], "decode() talked to the registry"
            await decoder.fetch_schema(pending.value.reference)
            return decoder.decode(value, NO_HEADERS)

    assert asyncio.run(scenario()) == FULL_EVENT


def test_each_schema_is_fetched_once(registry: tuple[str, RegistryState]) -> None:
    url, state = registry
    state.put(8, json.dumps(json.loads(V1_SCHEMA.read_text())))

    async def scenario() -> None:
        async with confluent(url) as decoder:
            for event in (FULL_EVENT, BARE_EVENT):
                await fetch_and_decode(decoder, encode_confluent(event, BY_ID))
            await decoder.fetch_schema(BY_ID)
            # Eight records naming a new schema at once: one request between them.
            await asyncio.gather(
                *(decoder.fetch_schema(SchemaReference(schema_id=8)) for _ in range(8))
            )

    asyncio.run(scenario())

    gets = [p for m, p, _ in state.get_requests() if m == "GET"]
    assert gets == ["/schemas/ids/7", "/schemas/ids/8"]


def test_raw_decoder_ignores_headers_and_names_no_schema() -> None:
    decoder = RawDecoder()
    headers = [(VALUE_SCHEMA_ID_HEADER, schema_prefix(BY_ID))]

    assert decoder.decode(encode_raw(FULL_EVENT), headers) == FULL_EVENT
    asyncio.run(decoder.fetch_schema(BY_ID))  # nothing to fetch, nothing happens
    asyncio.run(decoder.aclose())


@pytest.mark.parametrize("status", list(ShipmentStatus))
def test_every_status_round_trips(status: ShipmentStatus) -> None:
    event = replace(BARE_EVENT, status=status)

    assert RawDecoder().decode(encode_raw(event), NO_HEADERS).status is status


def test_location_with_every_part_null_stays_a_location() -> None:
    event = replace(BARE_EVENT, location=Location())

    assert RawDecoder().decode(encode_raw(event), NO_HEADERS).location == Location()


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
    assert RawDecoder().decode(encode_raw(event), NO_HEADERS) == event


def test_occurred_at_in_another_zone_is_encoded_as_the_same_instant() -> None:
    plus_two = timezone(timedelta(hours=2))
    local = FULL_EVENT.occurred_at.astimezone(plus_two)
    event = replace(FULL_EVENT, occurred_at=local)

    decoded = RawDecoder().decode(encode_raw(event), NO_HEADERS)

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

    decoded = RawDecoder(old_schema).decode(encode_raw(FULL_EVENT, old_schema), NO_HEADERS)

    assert decoded == replace(FULL_EVENT, location=None, estimated_delivery_date=None)


def test_older_writer_through_the_registry_is_read(registry: tuple[str, RegistryState]) -> None:
    url, state = registry
    state.put(3, V1_SCHEMA.read_text())
    value = encode_confluent(FULL_EVENT, SchemaReference(schema_id=3), load_schema_file(V1_SCHEMA))

    event = decoded(url, value)

    assert event.location is None
    assert event.estimated_delivery_date is None
    assert event.message == FULL_EVENT.message


def test_unknown_status_from_a_newer_writer_becomes_unknown(
    registry: tuple[str, RegistryState],
) -> None:
    url, state = registry
    newer_schema = load_schema_file(NEWER_SCHEMA)
    record = event_to_record(FULL_EVENT) | {"status": "held_at_customs", "weightGrams": 1200}
    state.put(4, NEWER_SCHEMA.read_text())
    body = write_with(newer_schema, record)

    raw = RawDecoder(newer_schema).decode(body, NO_HEADERS)
    confluent = decoded(url, b"\x00" + (4).to_bytes(4, "big") + body)

    assert raw == confluent == replace(FULL_EVENT, status=ShipmentStatus.UNKNOWN)


def test_writer_without_logical_types_is_read() -> None:
    plain_schema = load_schema_file(PLAIN_TYPES_SCHEMA)
    eta_days = (date(2024, 11, 6) - date(1970, 1, 1)).days
    record = event_to_record(FULL_EVENT) | {"estimatedDeliveryDate": eta_days}

    assert (
        RawDecoder(plain_schema).decode(write_with(plain_schema, record), NO_HEADERS) == FULL_EVENT
    )


def test_incompatible_writer_is_a_decode_error() -> None:
    schema = parse_schema_document(
        {"type": "record", "name": "Other", "fields": [{"name": "x", "type": "string"}]}, "test"
    )

    with pytest.raises(DecodeError, match="does not decode"):
        RawDecoder(schema).decode(write_with(schema, {"x": "hello"}), NO_HEADERS)


# --- malformed values --------------------------------------------------------------------------


def test_every_truncation_is_a_decode_error() -> None:
    value = encode_raw(FULL_EVENT)

    for length in range(len(value)):
        with pytest.raises(DecodeError, match="does not decode"):
            RawDecoder().decode(value[:length], NO_HEADERS)


@pytest.mark.parametrize(
    "garbage",
    [b"\xff" * 40, b"\x00\x00\x00\x00", b"\x02e\x02s\x02o\x02f\x00\x00\x7f", b"hello world!"],
)
def test_garbage_is_a_decode_error(garbage: bytes) -> None:
    with pytest.raises(DecodeError):
        RawDecoder().decode(garbage, NO_HEADERS)


_NEWER_WRITER = load_schema_file(NEWER_SCHEMA)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_or_raise_decode_error(value: bytes) -> None:
    """Whatever fastavro raises on bad bytes, only DecodeError escapes (with or without
    resolution from another writer schema)."""
    for decoder in (RawDecoder(), RawDecoder(_NEWER_WRITER)):
        with contextlib.suppress(DecodeError):
            decoder.decode(value, NO_HEADERS)


# The bundled writer is read by a hand-written reader (consumer.serde.bundled.read_bundled); any
# other writer, even an equal copy of the bundled schema, by fastavro. The two must agree.
_BY_FASTAVRO = RawDecoder(copy.deepcopy(tracking_event_schema()))


def _outcome(decoder: RawDecoder, value: bytes) -> TrackingEvent | None:
    try:
        return decoder.decode(value, NO_HEADERS)
    except DecodeError:
        return None


@given(_events)
def test_the_bundled_reader_and_fastavro_decode_alike(event: TrackingEvent) -> None:
    value = encode_raw(event)

    assert RawDecoder().decode(value, NO_HEADERS) == _BY_FASTAVRO.decode(value, NO_HEADERS)


@given(_events, st.data())
def test_what_the_bundled_reader_accepts_fastavro_reads_the_same(
    event: TrackingEvent, data: st.DataObject
) -> None:
    """Corrupted bytes: the hand-written reader never accepts what fastavro would read otherwise
    (it is stricter where fastavro indexes a union with a negative number, see below)."""
    value = bytearray(encode_raw(event))
    for _ in range(data.draw(st.integers(1, 3))):
        value[data.draw(st.integers(0, len(value) - 1))] = data.draw(st.integers(0, 255))

    decoded = _outcome(RawDecoder(), bytes(value))

    assert decoded is None or decoded == _outcome(_BY_FASTAVRO, bytes(value))


def test_a_negative_union_index_is_a_decode_error() -> None:
    """fastavro reads union index -1 (zigzag byte 1) as the last branch; Avro has no such index."""
    body = encode_raw(replace(BARE_EVENT, carrier="UPS"))
    branch = body.index(b"\x02\x06UPS")

    with pytest.raises(DecodeError, match="union index -1"):
        RawDecoder().decode(body[:branch] + b"\x01" + body[branch + 1 :], NO_HEADERS)


def test_a_varint_longer_than_ten_bytes_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="longer than 10 bytes"):
        RawDecoder().decode(b"\xff" * 11 + b"\x00", NO_HEADERS)


def test_trailing_bytes_are_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="3 trailing byte"):
        RawDecoder().decode(encode_raw(FULL_EVENT) + b"abc", NO_HEADERS)


def test_trailing_bytes_after_confluent_body_are_a_decode_error(
    registry: tuple[str, RegistryState],
) -> None:
    with pytest.raises(DecodeError, match="schema id 7: 1 trailing byte"):
        decoded(registry[0], encode_confluent(FULL_EVENT, BY_ID) + b"\x00")


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
        RawDecoder().decode(encode_raw(event), NO_HEADERS)


@pytest.mark.parametrize("in_header", [False, True], ids=["prefix", "header"])
@pytest.mark.parametrize("magic", [2, 7, 255])
def test_other_magic_bytes_are_refused(
    registry: tuple[str, RegistryState], magic: int, in_header: bool
) -> None:
    framing = bytes([magic]) + schema_prefix(BY_ID)[1:]
    value, headers = (
        (encode_raw(FULL_EVENT), [(VALUE_SCHEMA_ID_HEADER, framing)])
        if in_header
        else (framing + encode_raw(FULL_EVENT), [])
    )

    with pytest.raises(DecodeError, match=f"magic byte {magic}; expected 0 .* or 1 "):
        decoded(registry[0], value, headers)
    assert registry[1].get_requests() == []


@pytest.mark.parametrize("value", [b"", b"\x00", b"\x00\x00\x00\x01", b"\x01", b"\x01" + bytes(15)])
def test_too_short_confluent_value_is_a_decode_error(
    registry: tuple[str, RegistryState], value: bytes
) -> None:
    with pytest.raises(DecodeError, match=f"value is {len(value)} byte\\(s\\) long"):
        decoded(registry[0], value)


@pytest.mark.parametrize(
    "header", [b"", b"\x00\x00\x00\x07", b"\x00\x00\x00\x00\x07\x00", bytes(18)]
)
def test_schema_id_header_of_the_wrong_length_is_a_decode_error(
    registry: tuple[str, RegistryState], header: bytes
) -> None:
    headers = [(VALUE_SCHEMA_ID_HEADER, header)]

    with pytest.raises(DecodeError, match=f"header is {len(header)} byte"):
        decoded(registry[0], encode_raw(FULL_EVENT), headers)


def test_unknown_schema_is_a_decode_error_then_refused_without_asking(
    registry: tuple[str, RegistryState],
) -> None:
    url, state = registry
    value = encode_confluent(FULL_EVENT, SchemaReference(schema_id=4242))

    async def scenario() -> None:
        async with confluent(url) as decoder:
            with pytest.raises(SchemaRegistryError, match="unknown schema id 4242"):
                await fetch_and_decode(decoder, value)
            with pytest.raises(SchemaRegistryError, match="unknown schema id 4242"):
                decoder.decode(value, NO_HEADERS)  # negatively cached: no SchemaPending

    asyncio.run(scenario())
    assert len(state.get_requests()) == 1


@pytest.mark.parametrize("reference", [BY_ID, BY_GUID], ids=str)
def test_truncated_confluent_body_names_the_schema(
    registry: tuple[str, RegistryState], reference: SchemaReference
) -> None:
    with pytest.raises(DecodeError, match=f"{reference}: Avro body does not decode"):
        decoded(registry[0], encode_confluent(FULL_EVENT, reference)[:-3])


def test_registry_down_is_not_a_decode_error() -> None:
    with running_registry() as (url, _):
        pass  # stopped: nothing listens on its port any more

    with pytest.raises(SchemaRegistryUnavailable) as caught:
        decoded(url, encode_confluent(FULL_EVENT, BY_ID))
    assert not isinstance(caught.value, DecodeError)


# --- IDs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("avro_name", ["eventId", "storeId", "orderId", "fulfillmentId"])
def test_overlong_id_is_a_decode_error_naming_field_and_length(avro_name: str) -> None:
    longest = event_to_record(FULL_EVENT) | {avro_name: "x" * MAX_ID_LENGTH}
    too_long = event_to_record(FULL_EVENT) | {avro_name: "ü" * (MAX_ID_LENGTH + 1)}

    assert record_to_event(longest)
    with pytest.raises(DecodeError, match=f"field {avro_name} is {MAX_ID_LENGTH + 1} characters"):
        record_to_event(too_long)


def test_ids_with_url_and_non_ascii_characters_decode() -> None:
    odd = "a/b?c#d%2Fe f+g&h=ü漢字🚚"
    event = replace(FULL_EVENT, event_id=odd, store_id=odd, order_id=odd, fulfillment_id=odd)

    assert RawDecoder().decode(encode_raw(event), NO_HEADERS) == event


# --- configuration -----------------------------------------------------------------------------


def test_build_decoder_raw_reads_the_bundled_schema() -> None:
    decoder = build_decoder(settings())

    assert isinstance(decoder, RawDecoder)
    assert decoder.decode(encode_raw(FULL_EVENT), NO_HEADERS) == FULL_EVENT


def test_build_decoder_raw_uses_the_configured_writer_schema() -> None:
    decoder = build_decoder(settings(avro_writer_schema_file=V1_SCHEMA))
    value = encode_raw(BARE_EVENT, load_schema_file(V1_SCHEMA))

    assert decoder.decode(value, NO_HEADERS) == BARE_EVENT


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


def test_build_decoder_confluent_uses_the_registry(registry: tuple[str, RegistryState]) -> None:
    url = registry[0].replace("http://", "http://user:pw@")

    async def scenario() -> TrackingEvent:
        decoder = build_decoder(settings(avro_framing="confluent", schema_registry_url=url))
        assert isinstance(decoder, ConfluentDecoder)
        try:
            return await fetch_and_decode(decoder, encode_confluent(FULL_EVENT, BY_ID))
        finally:
            await decoder.aclose()

    assert asyncio.run(scenario()) == FULL_EVENT


def test_build_decoder_refuses_an_unusable_registry_url() -> None:
    with pytest.raises(ConfigError, match=r"^SCHEMA_REGISTRY_URL: must be an http") as caught:
        build_decoder(settings(avro_framing="confluent", schema_registry_url="user:hunter2@h"))
    assert "hunter2" not in str(caught.value) and "\n" not in str(caught.value)


def test_build_decoder_confluent_without_registry_url_is_a_config_error() -> None:
    unchecked = Settings.model_construct(avro_framing="confluent", schema_registry_url=None)

    with pytest.raises(ConfigError, match=r"^SCHEMA_REGISTRY_URL: "):
        build_decoder(unchecked)

"""Avro bytes ⇄ ``TrackingEvent`` in the two framings the topic may use (DESIGN §2).

Framing is configuration, never guessed: ``raw`` is plain Avro binary written with the bundled
schema or a configured writer schema; ``confluent`` is magic byte 0, a 4-byte big-endian schema ID
and Avro binary whose writer schema comes from the Schema Registry. Either way the bytes are
resolved to the bundled reader schema by Avro's rules, so producers may evolve the schema.

Decoding is on the hot path (thousands of records a second): every schema is parsed once, never
per record. A value that cannot become a valid event raises ``DecodeError`` (the pipeline
dead-letters it); a Schema Registry outage raises ``SchemaRegistryUnavailable`` instead, which is
retried, because the record may be fine.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol, cast

import fastavro
from fastavro.read import SchemaResolutionError

from consumer.avro_files import load_schema, load_schema_file
from consumer.config import Settings
from consumer.errors import ConfigError, DecodeError
from consumer.model import Location, ShipmentStatus, TrackingEvent
from consumer.schema_registry import SchemaPending, SchemaReference, SchemaRegistryClient

SCHEMA_NAME = "tracking_event"
CONFLUENT_MAGIC_BYTE = 0
_CONFLUENT_HEADER_SIZE = 5  # magic byte + 4-byte schema ID
_ID_FIELDS = ("eventId", "storeId", "orderId", "fulfillmentId")
MAX_ID_LENGTH = 256
"""Longer IDs are refused: real ones are short, and each ends up in URLs and state records."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DATE = date(1970, 1, 1)
_MILLISECOND = timedelta(milliseconds=1)

# fastavro reports bytes that do not fit the schema with any of these, depending on where the
# bytes go wrong (a short read, an out-of-range union or enum index, a bad length, bad UTF-8...).
_FASTAVRO_READ_ERRORS = (
    EOFError,
    IndexError,
    KeyError,
    OverflowError,
    SchemaResolutionError,
    TypeError,
    ValueError,
)


def tracking_event_schema() -> dict[str, Any]:
    """The bundled ``TrackingEvent`` schema (parsed, cached): the reader schema of every decoder."""
    return load_schema(SCHEMA_NAME)


class EventDecoder(Protocol):
    """Turns one Kafka record value into a ``TrackingEvent``.

    Raises ``DecodeError`` for a value that can never decode (dead-letter it) and
    ``SchemaRegistryUnavailable`` when the writer schema cannot be fetched right now (retry it).
    """

    def decode(self, value: bytes, headers: Sequence[tuple[str, bytes]]) -> TrackingEvent: ...

    async def fetch_schema(self, reference: SchemaReference) -> None: ...


class RawDecoder:
    """Plain Avro binary written with the bundled schema or with ``writer_schema`` (parsed)."""

    def __init__(self, writer_schema: dict[str, Any] | None = None) -> None:
        self._reader = tracking_event_schema()
        self._writer = self._reader if writer_schema is None else writer_schema

    def decode(self, value: bytes, headers: Sequence[tuple[str, bytes]] = ()) -> TrackingEvent:
        return _decode_body(value, 0, self._writer, self._reader, "raw Avro value")

    async def fetch_schema(self, reference: SchemaReference) -> None:
        """Never needed: a raw value names no schema."""


class ConfluentDecoder:
    """Confluent wire format: magic byte 0, 4-byte big-endian schema ID, Avro binary."""

    def __init__(self, registry: SchemaRegistryClient) -> None:
        self._registry = registry
        self._reader = tracking_event_schema()
        # Per schema ID, the writer schema to hand fastavro: the reader schema itself when the
        # registry's copy is identical, so that fastavro's per-record equality check is an
        # identity check and no resolution runs.
        self._writers: dict[int, dict[str, Any]] = {}

    def decode(self, value: bytes, headers: Sequence[tuple[str, bytes]] = ()) -> TrackingEvent:
        if len(value) < _CONFLUENT_HEADER_SIZE:
            raise DecodeError(
                f"Confluent-framed value is {len(value)} byte(s) long; it needs at least "
                f"{_CONFLUENT_HEADER_SIZE} (magic byte and 4-byte schema id) plus the Avro body"
            )
        if value[0] != CONFLUENT_MAGIC_BYTE:
            raise DecodeError(
                f"Confluent framing: found magic byte {value[0]}; only magic byte "
                f"{CONFLUENT_MAGIC_BYTE} (schema id in the value) is supported"
            )
        schema_id = int.from_bytes(value[1:_CONFLUENT_HEADER_SIZE], "big")
        writer = self._writers.get(schema_id)
        if writer is None:
            raise SchemaPending(SchemaReference(schema_id))
        return _decode_body(
            value, _CONFLUENT_HEADER_SIZE, writer, self._reader, f"schema id {schema_id}"
        )

    async def fetch_schema(self, reference: SchemaReference) -> None:
        writer = await asyncio.to_thread(self._registry.get_schema, reference.schema_id)
        self._writers[reference.schema_id] = self._reader if writer == self._reader else writer


def build_decoder(settings: Settings) -> EventDecoder:
    """The decoder the configuration asks for (``AVRO_FRAMING`` and its companions)."""
    if settings.avro_framing == "confluent":
        if not settings.schema_registry_url:
            raise ConfigError("SCHEMA_REGISTRY_URL", "required when AVRO_FRAMING=confluent")
        try:
            registry = SchemaRegistryClient(settings.schema_registry_url)
        except ValueError as exc:
            raise ConfigError("SCHEMA_REGISTRY_URL", str(exc)) from exc
        return ConfluentDecoder(registry)
    if settings.avro_writer_schema_file is None:
        return RawDecoder()
    try:
        writer_schema = load_schema_file(settings.avro_writer_schema_file)
    except (OSError, ValueError) as exc:
        raise ConfigError("AVRO_WRITER_SCHEMA_FILE", str(exc)) from exc
    return RawDecoder(writer_schema)


def encode_raw(event: TrackingEvent, schema: dict[str, Any] | None = None) -> bytes:
    """Plain Avro binary of ``event``, written with ``schema`` (parsed) or the bundled one."""
    out = io.BytesIO()
    fastavro.schemaless_writer(
        out, tracking_event_schema() if schema is None else schema, event_to_record(event)
    )
    return out.getvalue()


def encode_confluent(
    event: TrackingEvent, schema_id: int, schema: dict[str, Any] | None = None
) -> bytes:
    """Confluent wire format of ``event``; ``schema`` must be the one registered as
    ``schema_id`` (the bundled one by default)."""
    header = bytes([CONFLUENT_MAGIC_BYTE]) + schema_id.to_bytes(4, "big")
    return header + encode_raw(event, schema)


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


def record_to_event(record: Mapping[str, Any]) -> TrackingEvent:
    """The event for a decoded Avro record; ``DecodeError`` if it is not a usable event.

    Accepts logical-type values (datetime, date) as fastavro returns them, and the plain
    long/int a writer schema without logical types produces (epoch milliseconds, epoch days).
    """
    event_id, store_id, order_id, fulfillment_id = (_required_id(record, f) for f in _ID_FIELDS)
    try:
        status = ShipmentStatus(record["status"])
        occurred_at = _utc_datetime(record["occurredAt"])
        estimated_delivery_date = _optional_date(record.get("estimatedDeliveryDate"))
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise DecodeError(f"TrackingEvent {event_id!r}: invalid field value: {exc!r}") from exc
    location = record.get("location")
    return TrackingEvent(
        event_id=event_id,
        store_id=store_id,
        order_id=order_id,
        fulfillment_id=fulfillment_id,
        status=status,
        occurred_at=occurred_at,
        carrier=record.get("carrier"),
        tracking_number=record.get("trackingNumber"),
        message=record.get("message"),
        location=None
        if location is None
        else Location(
            city=location.get("city"),
            state=location.get("state"),
            country=location.get("country"),
            postal_code=location.get("postalCode"),
        ),
        estimated_delivery_date=estimated_delivery_date,
    )


def _decode_body(
    value: bytes, offset: int, writer: dict[str, Any], reader: dict[str, Any], source: str
) -> TrackingEvent:
    stream = io.BytesIO(value)
    stream.seek(offset)
    try:
        # The reader schema is a record, so what comes back is a dict.
        record = cast("dict[str, Any]", fastavro.schemaless_reader(stream, writer, reader))
    except _FASTAVRO_READ_ERRORS as exc:
        raise DecodeError(f"{source}: Avro body does not decode: {exc!r}") from exc
    leftover = len(value) - stream.tell()
    if leftover:
        raise DecodeError(
            f"{source}: {leftover} trailing byte(s) after the Avro record "
            f"({len(value)} bytes in all)"
        )
    return record_to_event(record)


def _required_id(record: Mapping[str, Any], field: str) -> str:
    value = record.get(field)
    if not isinstance(value, str) or not value.strip():
        raise DecodeError(f"TrackingEvent field {field} is empty or missing")
    if len(value) > MAX_ID_LENGTH:
        raise DecodeError(
            f"TrackingEvent field {field} is {len(value)} characters long; at most "
            f"{MAX_ID_LENGTH} are accepted"
        )
    return value


def _utc_datetime(value: object) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, int):
        return _EPOCH + value * _MILLISECOND
    raise TypeError(f"occurredAt must be a timestamp, not {type(value).__name__}")


def _optional_date(value: object) -> date | None:
    if value is None or isinstance(value, date):
        return value
    if isinstance(value, int):
        return _EPOCH_DATE + timedelta(days=value)
    raise TypeError(f"estimatedDeliveryDate must be a date, not {type(value).__name__}")

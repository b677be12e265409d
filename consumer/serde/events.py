"""Avro bytes ⇄ ``TrackingEvent`` in the two framings the topic may use (docs/design.md §2).

Framing is configuration, never guessed: ``raw`` is plain Avro binary written with the bundled
schema or a configured writer schema; ``confluent`` is Confluent's wire format, whose writer
schema comes from the Schema Registry, named by the value's prefix (magic byte 0 and a 4-byte
big-endian schema ID, or magic byte 1 and a 16-byte schema GUID) or, with the same bytes, by the
``__value_schema_id`` header (then the value is the bare Avro body). Either way the bytes are
resolved to the bundled reader schema by Avro's rules, so producers may evolve the schema.

Decoding is on the hot path (thousands of records a second) and on the event loop: every schema
is parsed once, never per record, and ``decode`` never does I/O. A value that cannot become a
valid event raises ``DecodeError`` (the pipeline dead-letters it); a writer schema not cached yet
raises ``SchemaPending``, and the pipeline awaits ``fetch_schema`` (off the hot path, which may
raise ``SchemaRegistryUnavailable``: retried, because the record may be fine) and decodes again.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol, cast

import fastavro
from fastavro.read import SchemaResolutionError

from consumer.config import Settings
from consumer.errors import ConfigError, DecodeError, SchemaPending
from consumer.kafka.schema_registry import SchemaReference, SchemaRegistry
from consumer.model import Location, ShipmentStatus, TrackingEvent
from consumer.serde.schemas import load_schema, load_schema_file

SCHEMA_NAME = "tracking_event"
# Confluent's framing, as confluent-kafka's schema registry reads it (``SchemaId.from_bytes``,
# ``dual_schema_id_deserializer``): the header, when present, wins over the value's prefix.
VALUE_SCHEMA_ID_HEADER = "__value_schema_id"
_HEADER_SOURCE = f"{VALUE_SCHEMA_ID_HEADER} header"
_MAGIC_ID = 0  # + 4-byte big-endian schema ID
_MAGIC_GUID = 1  # + 16-byte schema GUID
_PREFIX_SIZES = {_MAGIC_ID: 5, _MAGIC_GUID: 17}
MAX_ID_LENGTH = 256  # real IDs are short; a hostile one would bloat state records and URLs
_ID_FIELDS = ("eventId", "storeId", "orderId", "fulfillmentId")
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
    """Turns one Kafka record value (and its headers) into a ``TrackingEvent``."""

    def decode(self, value: bytes, headers: Sequence[tuple[str, bytes]]) -> TrackingEvent:
        """Synchronous and without I/O. ``DecodeError``: the value can never decode
        (dead-letter it); ``SchemaPending``: ``fetch_schema`` its reference, then decode again."""
        ...

    async def fetch_schema(self, reference: SchemaReference) -> None:
        """One attempt to cache ``reference``'s writer schema (concurrent calls share it).

        ``SchemaRegistryUnavailable``: try again later; ``SchemaRegistryError``: the record is bad.
        """
        ...


class ClosableDecoder(EventDecoder, Protocol):
    """What ``build_decoder`` gives the app: a decoder whose connections it closes at shutdown."""

    async def aclose(self) -> None: ...


class RawDecoder:
    """Plain Avro binary written with the bundled schema or with ``writer_schema`` (parsed)."""

    def __init__(self, writer_schema: dict[str, Any] | None = None) -> None:
        self._reader = tracking_event_schema()
        self._writer = self._reader if writer_schema is None else writer_schema

    def decode(self, value: bytes, headers: Sequence[tuple[str, bytes]]) -> TrackingEvent:
        """Headers are not looked at: the writer schema is configuration."""
        return _decode_body(value, 0, self._writer, self._reader, "raw Avro value")

    async def fetch_schema(self, reference: SchemaReference) -> None:
        """Never needed: a raw value names no schema, so ``decode`` never raises SchemaPending."""

    async def aclose(self) -> None:
        """Nothing to close."""


class ConfluentDecoder:
    """Confluent wire format (module docstring); writer schemas from ``registry``."""

    def __init__(self, registry: SchemaRegistry) -> None:
        self._registry = registry
        self._reader = tracking_event_schema()
        # Per schema ID (int) or GUID (16 bytes): the writer schema to hand fastavro, and how
        # errors name it. The writer is the reader schema itself when the registry's copy is
        # identical, so that fastavro's per-record equality check is an identity check and no
        # resolution runs.
        self._writers: dict[int | bytes, tuple[dict[str, Any], str]] = {}

    def decode(self, value: bytes, headers: Sequence[tuple[str, bytes]]) -> TrackingEvent:
        for name, header in headers:
            if name == VALUE_SCHEMA_ID_HEADER:
                key, _ = _schema_prefix(header, _HEADER_SOURCE, exact=True)
                offset = 0
                break
        else:
            key, offset = _schema_prefix(value, "Confluent-framed value", exact=False)
        cached = self._writers.get(key)
        if cached is None:
            reference = _reference(key)
            self._registry.raise_if_known_bad(reference)
            raise SchemaPending(reference)
        return _decode_body(value, offset, cached[0], self._reader, cached[1])

    async def fetch_schema(self, reference: SchemaReference) -> None:
        key = _cache_key(reference)
        if key in self._writers:
            return
        writer = await self._registry.fetch(reference)
        if writer == self._reader:
            writer = self._reader
        self._writers.setdefault(key, (writer, str(reference)))

    async def aclose(self) -> None:
        """Close the registry client's connections."""
        await self._registry.aclose()


def build_decoder(settings: Settings) -> ClosableDecoder:
    """The decoder the configuration asks for (``AVRO_FRAMING`` and its companions)."""
    if settings.avro_framing == "confluent":
        if not settings.schema_registry_url:
            raise ConfigError("SCHEMA_REGISTRY_URL", "required when AVRO_FRAMING=confluent")
        try:
            registry = SchemaRegistry(settings.schema_registry_url)
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
    event: TrackingEvent, reference: SchemaReference, schema: dict[str, Any] | None = None
) -> bytes:
    """Confluent wire format of ``event`` (schema prefix, then Avro); ``schema`` must be the one
    registered as ``reference`` (the bundled one by default)."""
    return schema_prefix(reference) + encode_raw(event, schema)


def schema_prefix(reference: SchemaReference) -> bytes:
    """The bytes naming ``reference``: a value's prefix, or a ``__value_schema_id`` header."""
    key = _cache_key(reference)
    if isinstance(key, int):
        return bytes([_MAGIC_ID]) + key.to_bytes(4, "big")
    return bytes([_MAGIC_GUID]) + key


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
            f"TrackingEvent field {field} is {len(value)} characters long; "
            f"at most {MAX_ID_LENGTH} are accepted"
        )
    return value


def _schema_prefix(data: bytes, what: str, *, exact: bool) -> tuple[int | bytes, int]:
    """(cache key, length) of the schema prefix opening ``data``; ``exact``: nothing may follow."""
    if not data:
        raise DecodeError(
            f"{what} is 0 byte(s) long; it needs a magic byte and a schema id or guid"
        )
    magic = data[0]
    size = _PREFIX_SIZES.get(magic)
    if size is None:
        raise DecodeError(
            f"{what}: found magic byte {magic}; expected {_MAGIC_ID} (schema id) "
            f"or {_MAGIC_GUID} (schema guid)"
        )
    if len(data) < size or (exact and len(data) != size):
        raise DecodeError(
            f"{what} is {len(data)} byte(s) long; magic byte {magic} takes "
            f"{'exactly' if exact else 'at least'} {size}"
        )
    return (int.from_bytes(data[1:5], "big") if magic == _MAGIC_ID else data[1:size]), size


def _cache_key(reference: SchemaReference) -> int | bytes:
    """The schema ID, or the GUID's 16 bytes: what ``decode`` finds without building a string."""
    if reference.guid is None:
        return cast("int", reference.schema_id)  # exactly one of the two is set
    return uuid.UUID(reference.guid).bytes


def _reference(key: int | bytes) -> SchemaReference:
    if isinstance(key, int):
        return SchemaReference(schema_id=key)
    return SchemaReference(guid=str(uuid.UUID(bytes=key)))


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

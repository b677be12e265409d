"""Avro bytes → ``TrackingEvent`` in the two framings the topic may use (docs/design.md §2);
the test-only encoders (the other way) are in ``devkit.encoding``.

Framing is configuration, never guessed: ``raw`` is plain Avro binary written with the bundled
schema or a configured writer schema; ``confluent`` is Confluent's wire format, whose writer
schema comes from the Schema Registry, named by the value's prefix (magic byte 0 and a 4-byte
big-endian schema ID, or magic byte 1 and a 16-byte schema GUID) or, with the same bytes, by the
``__value_schema_id`` header (then the value is the bare Avro body). Either way the bytes are
resolved to the bundled reader schema by Avro's rules, so producers may evolve the schema.

Decoding is on the hot path (thousands of records a second) and on the event loop: every schema
is parsed once, never per record, and ``decode`` never does I/O. A body written with the bundled
schema itself (the common case) is read by a hand-written reader, any other by fastavro. A value
that cannot become a valid event raises ``DecodeError`` (the pipeline dead-letters it); a writer
schema not cached yet raises ``SchemaPending``, and the pipeline awaits ``fetch_schema`` (off the
hot path, which may raise ``SchemaRegistryUnavailable``: retried, because the record may be fine)
and decodes again.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Mapping, Sequence
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
MAGIC_ID = 0  # + 4-byte big-endian schema ID
MAGIC_GUID = 1  # + 16-byte schema GUID
_PREFIX_SIZES = {MAGIC_ID: 5, MAGIC_GUID: 17}
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
        # identical, so that ``_decode_body`` takes the hand-written reader for it.
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
        key = schema_key(reference)
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


def record_to_event(record: Mapping[str, Any]) -> TrackingEvent:
    """The event for a decoded Avro record; ``DecodeError`` if it is not a usable event.

    Accepts logical-type values (datetime, date) as fastavro returns them, and the plain
    long/int a writer schema without logical types produces (epoch milliseconds, epoch days).
    """
    event_id, store_id, order_id, fulfillment_id = (
        _required_id(record.get(f), f) for f in _ID_FIELDS
    )
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
    # The writer is the reader schema itself (not an equal copy) when it is the bundled one:
    # RawDecoder's default, and ConfluentDecoder keeps the reader for an identical registry copy.
    read = _read_bundled if writer is reader else _fastavro_reader(writer, reader)
    try:
        event, end = read(value, offset)
    except _FASTAVRO_READ_ERRORS as exc:
        raise DecodeError(f"{source}: Avro body does not decode: {exc!r}") from exc
    leftover = len(value) - end
    if leftover:
        raise DecodeError(
            f"{source}: {leftover} trailing byte(s) after the Avro record "
            f"({len(value)} bytes in all)"
        )
    return event


def _fastavro_reader(
    writer: dict[str, Any], reader: dict[str, Any]
) -> Callable[[bytes, int], tuple[TrackingEvent, int]]:
    """fastavro, resolving ``writer`` to ``reader``: any writer schema but the bundled one."""

    def read(value: bytes, offset: int) -> tuple[TrackingEvent, int]:
        stream = io.BytesIO(value)
        stream.seek(offset)
        # The reader schema is a record, so what comes back is a dict.
        record = cast("dict[str, Any]", fastavro.schemaless_reader(stream, writer, reader))
        end = stream.tell()
        return record_to_event(record), end

    return read


# The bundled schema as ``_read_bundled`` reads it by hand: (field, type), types as fastavro's
# parsed schema spells them. Checked against the schema at import, so the schema cannot change
# without this reader changing too.
_OPTIONAL_STRING = ("null", "string")
_BUNDLED_LAYOUT = (
    ("eventId", "string"),
    ("storeId", "string"),
    ("orderId", "string"),
    ("fulfillmentId", "string"),
    ("carrier", _OPTIONAL_STRING),
    ("trackingNumber", _OPTIONAL_STRING),
    ("status", "enum"),
    ("occurredAt", "timestamp-millis"),
    ("message", _OPTIONAL_STRING),
    (
        "location",
        (
            "null",
            tuple((name, _OPTIONAL_STRING) for name in ("city", "state", "country", "postalCode")),
        ),
    ),
    ("estimatedDeliveryDate", ("null", "date")),
)


def _layout(schema: Any) -> Any:
    if isinstance(schema, list):
        return tuple(_layout(branch) for branch in schema)
    if isinstance(schema, str):
        return schema
    if schema["type"] == "record":
        return tuple((field["name"], _layout(field["type"])) for field in schema["fields"])
    return schema.get("logicalType", schema["type"])


def _bundled_statuses() -> tuple[ShipmentStatus, ...]:
    """The status enum's symbols in index order, once the schema is known to match the layout."""
    schema = tracking_event_schema()
    if _layout(schema) != _BUNDLED_LAYOUT:
        raise RuntimeError(f"{SCHEMA_NAME}.avsc changed: update _read_bundled to match it")
    (status,) = (field["type"] for field in schema["fields"] if field["name"] == "status")
    return tuple(ShipmentStatus(symbol) for symbol in status["symbols"])


_STATUSES = _bundled_statuses()
_MAX_VARINT_BYTES = 10  # a 64-bit Avro long; a longer varint is garbage, not a bigger number


def _read_long(data: bytes, pos: int) -> tuple[int, int]:
    """The zigzag varint (Avro int or long) at ``pos``: (value, position after it)."""
    byte = data[pos]
    if byte < 0x80:  # most of them: lengths, union and enum indexes
        return (byte >> 1) ^ -(byte & 1), pos + 1
    start = pos
    number, shift = byte & 0x7F, 7
    while byte & 0x80:
        pos += 1
        if pos - start >= _MAX_VARINT_BYTES:
            raise ValueError(f"varint at byte {start} is longer than {_MAX_VARINT_BYTES} bytes")
        byte = data[pos]
        number |= (byte & 0x7F) << shift
        shift += 7
    return (number >> 1) ^ -(number & 1), pos + 1


def _read_string(data: bytes, pos: int) -> tuple[str, int]:
    size = data[pos]
    if size < 0x80:  # inlined one-byte length (strings under 64 bytes): -1 call per string
        size, pos = (size >> 1) ^ -(size & 1), pos + 1
    else:
        size, pos = _read_long(data, pos)
    end = pos + size
    if size < 0 or end > len(data):
        raise EOFError(f"string of {size} byte(s) at byte {pos}; {len(data) - pos} left")
    return data[pos:end].decode(), end


def _read_optional_string(data: bytes, pos: int) -> tuple[str | None, int]:
    branch = data[pos]  # a one-byte index is inlined as in _read_string
    if branch == 0:
        return None, pos + 1
    if branch == 2:  # zigzag 1
        return _read_string(data, pos + 1)
    present, pos = _read_branch(data, pos, "string")
    return _read_string(data, pos) if present else (None, pos)


def _read_branch(data: bytes, pos: int, what: str) -> tuple[bool, int]:
    """A ``[null, X]`` union's index: (whether X follows, position after the index)."""
    branch, pos = _read_long(data, pos)
    if branch not in (0, 1):
        raise ValueError(f"union index {branch} out of range for [null, {what}]")
    return branch == 1, pos


def _read_bundled(data: bytes, pos: int) -> tuple[TrackingEvent, int]:
    """A record of the bundled schema read by hand, straight into a ``TrackingEvent``.

    The common case (the writer is the bundled schema) without fastavro's generic per-field
    dispatch and the dict in between: ``decode`` went from 20 to 13 µs a record on the bench
    workload (schemaless_reader alone was 12, record_to_event 6). Bad bytes raise what fastavro
    raises (EOFError, IndexError, ValueError, OverflowError) and the checks are record_to_event's;
    stricter only where fastavro reads garbage: a negative union index (which it takes as the
    last branch) and a varint longer than a 64-bit long.
    """
    event_id, pos = _read_string(data, pos)
    store_id, pos = _read_string(data, pos)
    order_id, pos = _read_string(data, pos)
    fulfillment_id, pos = _read_string(data, pos)
    carrier, pos = _read_optional_string(data, pos)
    tracking_number, pos = _read_optional_string(data, pos)
    symbol, pos = _read_long(data, pos)
    if not 0 <= symbol < len(_STATUSES):
        raise ValueError(f"enum index {symbol} out of range for ShipmentStatus")
    millis, pos = _read_long(data, pos)
    occurred_at = _EPOCH + millis * _MILLISECOND
    message, pos = _read_optional_string(data, pos)
    location = None
    present, pos = _read_branch(data, pos, "Location")
    if present:
        city, pos = _read_optional_string(data, pos)
        state, pos = _read_optional_string(data, pos)
        country, pos = _read_optional_string(data, pos)
        postal_code, pos = _read_optional_string(data, pos)
        location = Location(city, state, country, postal_code)
    estimated_delivery_date = None
    present, pos = _read_branch(data, pos, "date")
    if present:
        days, pos = _read_long(data, pos)
        estimated_delivery_date = _EPOCH_DATE + timedelta(days=days)
    event = TrackingEvent(
        event_id=_required_id(event_id, "eventId"),
        store_id=_required_id(store_id, "storeId"),
        order_id=_required_id(order_id, "orderId"),
        fulfillment_id=_required_id(fulfillment_id, "fulfillmentId"),
        status=_STATUSES[symbol],
        occurred_at=occurred_at,
        carrier=carrier,
        tracking_number=tracking_number,
        message=message,
        location=location,
        estimated_delivery_date=estimated_delivery_date,
    )
    return event, pos


def _required_id(value: object, field: str) -> str:
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
            f"{what}: found magic byte {magic}; expected {MAGIC_ID} (schema id) "
            f"or {MAGIC_GUID} (schema guid)"
        )
    if len(data) < size or (exact and len(data) != size):
        raise DecodeError(
            f"{what} is {len(data)} byte(s) long; magic byte {magic} takes "
            f"{'exactly' if exact else 'at least'} {size}"
        )
    return (int.from_bytes(data[1:5], "big") if magic == MAGIC_ID else data[1:size]), size


def schema_key(reference: SchemaReference) -> int | bytes:
    """The schema ID, or the GUID's 16 bytes: what ``decode`` finds without building a string
    (and, after the magic byte, what a value's prefix holds)."""
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

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
from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast

import fastavro
from fastavro.read import SchemaResolutionError

from consumer.config import Settings
from consumer.errors import ConfigError, DecodeError, SchemaPending
from consumer.kafka.schema_registry import SchemaReference, SchemaRegistry
from consumer.model import TrackingEvent
from consumer.serde.bundled import read_bundled
from consumer.serde.fields import record_to_event
from consumer.serde.framing import (
    HEADER_SOURCE,
    VALUE_SCHEMA_ID_HEADER,
    reference_of,
    schema_key,
    schema_prefix,
)
from consumer.serde.schemas import load_schema_file, tracking_event_schema

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
                key, _ = schema_prefix(header, HEADER_SOURCE, exact=True)
                offset = 0
                break
        else:
            key, offset = schema_prefix(value, "Confluent-framed value", exact=False)
        cached = self._writers.get(key)
        if cached is None:
            reference = reference_of(key)
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


def _decode_body(
    value: bytes, offset: int, writer: dict[str, Any], reader: dict[str, Any], source: str
) -> TrackingEvent:
    # The writer is the reader schema itself (not an equal copy) when it is the bundled one:
    # RawDecoder's default, and ConfluentDecoder keeps the reader for an identical registry copy.
    read = read_bundled if writer is reader else _fastavro_reader(writer, reader)
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

"""Confluent's wire format: which writer schema a value names, by its prefix or a header."""

from __future__ import annotations

import uuid
from typing import cast

from consumer.errors import DecodeError
from consumer.kafka.schema_registry import SchemaReference

# Confluent's framing, as confluent-kafka's schema registry reads it (``SchemaId.from_bytes``,
# ``dual_schema_id_deserializer``): the header, when present, wins over the value's prefix.
VALUE_SCHEMA_ID_HEADER = "__value_schema_id"
HEADER_SOURCE = f"{VALUE_SCHEMA_ID_HEADER} header"
MAGIC_ID = 0  # + 4-byte big-endian schema ID
MAGIC_GUID = 1  # + 16-byte schema GUID
_PREFIX_SIZES = {MAGIC_ID: 5, MAGIC_GUID: 17}


def schema_prefix(data: bytes, what: str, *, exact: bool) -> tuple[int | bytes, int]:
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


def reference_of(key: int | bytes) -> SchemaReference:
    if isinstance(key, int):
        return SchemaReference(schema_id=key)
    return SchemaReference(guid=str(uuid.UUID(bytes=key)))

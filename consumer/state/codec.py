"""``ShipmentState`` ⇄ changelog bytes: one format byte, then the record in that format.

- Format 1 (``consumer.state.format1``): Avro. Still read; written only for a state whose
  strings are too long for format 2. Avro states kept decoded in memory took 1,409 B each.
- Format 2 (``consumer.state.format2``): fixed-width binary with a CRC and a deadline hint, the
  in-memory form too.
A state whose strings do not fit format 2 (longer than 32 KiB) is written as format 1.
"""

from __future__ import annotations

from consumer.errors import StateDecodeError
from consumer.rules.state import ShipmentState
from consumer.state import format1, format2
from consumer.state.format2 import NO_DEADLINE, DeadlineHint, to_us

FORMAT_V1 = format1.FORMAT
FORMAT_V2 = format2.FORMAT

__all__ = [
    "FORMAT_V1",
    "FORMAT_V2",
    "NO_DEADLINE",
    "DeadlineHint",
    "deadline_hint",
    "decode_state",
    "encode_state",
    "to_us",
]


def encode_state(state: ShipmentState, hint: DeadlineHint | None = None) -> bytes:
    try:
        return format2.encode(state, hint)
    except format2.TooLong:
        return format1.encode(state)


def decode_state(value: bytes, start: int = 0) -> ShipmentState:
    """The state in ``value[start:]`` (the store keeps its own header in front)."""
    fmt = value[start] if len(value) > start else None
    try:
        if fmt == FORMAT_V2:
            return format2.decode(value, start)
        if fmt == FORMAT_V1:
            return format1.decode(value[start + 1 :])
    except (EOFError, ValueError, IndexError, KeyError, TypeError, OverflowError) as exc:
        raise StateDecodeError(f"corrupt state record: {exc}") from exc
    raise StateDecodeError(f"unknown state format byte {value[start : start + 1]!r}")


def deadline_hint(value: bytes) -> tuple[int, int]:
    """A record's (rules tag, deadline hint), after checking a format-2 record's CRC, so a
    restore can trust it without decoding it; tag 0 when it carries none (format 1 too).
    Raises ``StateDecodeError`` for a record that is not intact."""
    fmt = value[0] if value else None
    if fmt == FORMAT_V2 and (hint := format2.hint_of(value)) is not None:
        return hint
    if fmt == FORMAT_V1:
        return 0, NO_DEADLINE
    raise StateDecodeError(f"not an intact state record (format byte {value[:1]!r})")

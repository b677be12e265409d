"""A shipment as the store keeps it: one ``bytes`` per fulfillment ID.

The record is the input offset its state reflects, its pending deadline (µs), then the state in
the changelog's format 2 (``consumer.state.codec``). ``RestoredStates`` is what a changelog
restore hands to a new ``PartitionStore``: such records, built without decoding a state.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast

from consumer.rules import ShipmentState
from consumer.state.codec import NO_DEADLINE, encode_state
from consumer.state.timers import Timers

NO_OFFSET = -1
"""The offset of a state whose input offset is unknown (written before offsets were recorded)."""

UNSCHEDULED = NO_DEADLINE
"""A record's pending deadline while it has none (fired and not yet scheduled again)."""

HEADER = struct.Struct("<qq")
"""The record header: input offset, pending deadline (µs); the encoded state follows."""
_PENDING = struct.Struct("<q")


@dataclass
class RestoredStates:
    """What a changelog restore hands to a ``PartitionStore``.

    ``records``: each shipment's record (see ``PartitionStore``), its pending deadline the one
    the writer computed when ``rules_tag`` names the same rules, else ``UNSCHEDULED`` and the
    shipment is in ``unscheduled``; ``timers`` holds the deadlines already known.
    ``rewrite``: shipments whose newest state was followed in the changelog by an older one (a
    former owner's late write); their state must be written again, so that compaction, which
    keeps the last record of a key, keeps the newest. ``rewrite_tombstones``: the same for
    shipments whose newest record is a tombstone, with its input offset.
    """

    records: dict[str, bytes] = field(default_factory=dict)
    timers: Timers = field(default_factory=Timers)
    unscheduled: list[str] = field(default_factory=list)
    rules_tag: int = 0
    quarantined: int = 0
    rewrite: list[str] = field(default_factory=list)
    rewrite_tombstones: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, states: Mapping[str, ShipmentState], offset: int = NO_OFFSET) -> RestoredStates:
        """States from elsewhere than a changelog (tests, benchmarks), for the store to schedule."""
        records = {
            fid: pack_record(offset, UNSCHEDULED, encode_state(s)) for fid, s in states.items()
        }
        return cls(records, unscheduled=list(records))


def pack_record(offset: int, pending: int, encoded: bytes) -> bytes:
    return HEADER.pack(offset, pending) + encoded


def with_pending(value: bytes, pending: int) -> bytes:
    return value[:8] + _PENDING.pack(pending) + value[HEADER.size :]


def pending_of(value: bytes) -> int:
    return cast(int, _PENDING.unpack_from(value, 8)[0])


def offset_in(value: bytes) -> int:
    return cast(int, _PENDING.unpack_from(value)[0])

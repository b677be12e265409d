"""What was last computed from a state, remembered by the state's identity (states are
immutable, so one computed from the same object is the same)."""

from __future__ import annotations

import contextlib
from typing import Generic, TypeVar

from consumer.rules.state import ShipmentState

T = TypeVar("T")


class ByState(Generic[T]):
    """A bounded memo keyed by identity: each entry holds its state, so the id is not reused
    while the entry lives."""

    SIZE = 256  # > MAX_IN_FLIGHT: a state's put, write and schedule are a few awaits apart

    def __init__(self) -> None:
        self._entries: dict[int, tuple[ShipmentState, T]] = {}

    def get(self, state: ShipmentState) -> T | None:
        found = self._entries.get(id(state))
        return found[1] if found is not None and found[0] is state else None

    def put(self, state: ShipmentState, value: T) -> None:
        entries = self._entries
        entries[id(state)] = (state, value)
        if len(entries) > self.SIZE:
            with contextlib.suppress(StopIteration, KeyError, RuntimeError):  # a racing thread
                del entries[next(iter(entries))]

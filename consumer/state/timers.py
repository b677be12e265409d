"""When each shipment's next rule fires: its deadline, and the buckets that find the due ones.

A shipment's next deadline is its earliest rule timer or its expiry. ``Timers`` keeps them in
coarse buckets of fulfillment IDs, and an exact heap for the buckets the clock has reached; an
entry whose deadline no longer matches the shipment's pending one is skipped (lazy deletion).
"""

from __future__ import annotations

import heapq
import inspect
import zlib
from collections.abc import Callable, Iterator
from functools import cache

from consumer.rules import RulesConfig, ShipmentState, deadlines, engine, expires_at, next_deadline
from consumer.state.codec import NO_DEADLINE, to_us
from consumer.state.recent import ByState


def deadline_us(state: ShipmentState, config: RulesConfig) -> int:
    """The shipment's next deadline (its earliest rule timer, or its expiry), in µs.
    Raises ``OverflowError`` or ``ValueError`` for a date at the calendar's edge.

    Remembered per state: the changelog write (its hint) and the store's ``schedule`` both ask
    for the same new state, 2.2 computations an event (cProfile), 6 % of the event path."""
    known = _deadlines.get(state)
    if known is not None and known[0] is config:
        return known[1]
    timer = next_deadline(state, config)
    expiry = expires_at(state, config)
    deadline = to_us(expiry if timer is None else min(timer, expiry))
    _deadlines.put(state, (config, deadline))
    return deadline


_deadlines: ByState[tuple[RulesConfig, int]] = ByState()


def rules_tag(config: RulesConfig) -> int:
    """Names the rules that compute deadlines (their thresholds and the code that fires them), so a
    deadline written with other rules is recomputed, not trusted. Never 0 ("no deadline")."""
    return zlib.crc32(repr(config).encode(), _engine_crc()) or 1


@cache
def _engine_crc() -> int:
    try:
        return zlib.crc32(b"".join(inspect.getsource(m).encode() for m in (engine, deadlines)))
    except OSError:  # no source shipped: the thresholds alone name the rules
        return 0


class Timers:
    """Deadlines in buckets of 2**26 µs (67 s) for the future, an exact heap once the clock
    reaches a bucket. A heap entry per shipment took 96 B (tuple, int, list slot); a bucket
    entry takes 8 B, and a bucket (~26 shipments at a million over 30 days) ~150 B."""

    SHIFT = 26

    def __init__(self) -> None:
        self._buckets: dict[int, list[str]] = {}
        self._keys: list[int] = []  # heap of the buckets' keys
        self._near: list[tuple[int, str]] = []
        self._reached = NO_DEADLINE >> self.SHIFT  # buckets up to this one live in _near

    def add(self, fulfillment_id: str, deadline: int) -> None:
        bucket = deadline >> self.SHIFT
        if bucket <= self._reached:
            heapq.heappush(self._near, (deadline, fulfillment_id))
            return
        ids = self._buckets.get(bucket)
        if ids is None:
            ids = self._buckets[bucket] = []
            heapq.heappush(self._keys, bucket)
        ids.append(fulfillment_id)

    def due(self, clock: int, pending: Callable[[str], int]) -> Iterator[tuple[int, str]]:
        """Entries with a deadline strictly before ``clock``, earliest first; ``pending`` gives
        a shipment's current deadline when its bucket moves to the heap (stale ones are
        dropped there)."""
        reached = clock >> self.SHIFT
        while self._keys and self._keys[0] <= reached:
            bucket = heapq.heappop(self._keys)
            for fulfillment_id in self._buckets.pop(bucket):
                deadline = pending(fulfillment_id)
                if deadline >> self.SHIFT == bucket:
                    heapq.heappush(self._near, (deadline, fulfillment_id))
        self._reached = max(self._reached, reached)
        while self._near and self._near[0][0] < clock:
            yield heapq.heappop(self._near)

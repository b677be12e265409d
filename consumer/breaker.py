"""A gate that holds Redo calls while Redo cannot take them, and lets one probe through.

Two instances guard every call: the *auth* gate closes on the first 401/403 (every further
call would fail the same way) and the *circuit* closes after a run of retryable failures (Redo is
down; hammering it with every buffered record only slows its recovery). While closed, callers
wait; once the probe interval has passed, exactly one caller is let through as the probe. Its
success opens the gate for everybody, its failure closes it for another interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable


class Gate:
    def __init__(
        self,
        name: str,
        *,
        probe_interval: Callable[[int], float],
        on_change: Callable[[bool], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``probe_interval(n)`` is the wait before the n-th consecutive probe (n from 1)."""
        self.name = name
        self._probe_interval = probe_interval
        self._on_change = on_change
        self._clock = clock
        self._closed = False
        self._failed_probes = 0
        self._next_probe_at = 0.0
        self._probe_in_flight = False
        self._changed = asyncio.Condition()

    @property
    def closed(self) -> bool:
        return self._closed

    async def wait_turn(self) -> bool:
        """Wait until a call may go out. Returns True when the caller is the probe."""
        if not self._closed:  # the common case, without taking the condition's lock
            return False
        async with self._changed:
            while self._closed:
                now = self._clock()
                if not self._probe_in_flight and now >= self._next_probe_at:
                    self._probe_in_flight = True
                    return True
                timeout = None if self._probe_in_flight else self._next_probe_at - now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout)
            return False

    async def close(self) -> None:
        """Redo refused a call: hold everybody until the next probe."""
        async with self._changed:
            if self._closed:
                return  # a call that was already in flight when the gate closed
            self._set_closed(True)
            self._schedule_probe()

    async def probe_failed(self) -> None:
        async with self._changed:
            self._probe_in_flight = False
            self._schedule_probe()
            self._changed.notify_all()

    async def open(self) -> None:
        """A call succeeded: let everybody through."""
        async with self._changed:
            self._probe_in_flight = False
            self._failed_probes = 0
            self._set_closed(False)
            self._changed.notify_all()

    def _schedule_probe(self) -> None:
        self._failed_probes += 1
        self._next_probe_at = self._clock() + self._probe_interval(self._failed_probes)

    def _set_closed(self, closed: bool) -> None:
        if closed != self._closed:
            self._closed = closed
            if self._on_change is not None:
                self._on_change(closed)

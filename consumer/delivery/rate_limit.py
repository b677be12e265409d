"""Optional client-side cap on Redo requests per second (``REDO_RATE_LIMIT``, 0 = off).

Spaces requests evenly instead of allowing bursts: Redo's own limit answers 429 to a burst even
when the average is fine, and every 429 costs a retry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = 1.0 / per_second if per_second > 0 else 0.0
        self._clock = clock
        self._next_slot = 0.0

    async def acquire(self) -> None:
        """Wait for this request's slot; slots are handed out in call order."""
        if not self._interval:
            return
        now = self._clock()
        slot = max(now, self._next_slot)
        self._next_slot = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)

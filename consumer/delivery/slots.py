"""Bounded request concurrency in which a transition's follow-up calls go first.

A scan can cause two calls (its status, then a ``delayed``), and its state is written only after
both. With a plain FIFO semaphore the second call queues behind every other shipment's first
call, and the state stays unwritten all that time: a crash then re-sends calls that were made.
Urgent waiters (follow-up calls) are served before ordinary ones, in arrival order within each.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools


class Slots:
    def __init__(self, size: int) -> None:
        self._free = size
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    async def acquire(self, *, urgent: bool = False) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        handed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (0 if urgent else 1, next(self._order), handed))
        try:
            await handed
        except asyncio.CancelledError:
            if handed.done() and not handed.cancelled():
                self.release()  # the slot arrived as we were cancelled: pass it on
            raise

    def release(self) -> None:
        while self._waiters:
            _, _, waiter = heapq.heappop(self._waiters)
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1

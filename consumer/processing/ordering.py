"""Per-fulfillment FIFO, different fulfillments in parallel.

Each key (fulfillment ID) has a queue of jobs and at most one worker task draining it, so one
fulfillment's calls go out one at a time and in order while thousands of others proceed
concurrently. The number of concurrent HTTP requests is bounded elsewhere (the deliverer's
semaphore); the number of queued jobs is bounded by partition pausing upstream.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class KeyedDispatcher:
    def __init__(self) -> None:
        self._queues: dict[Hashable, deque[Job]] = {}
        self._workers: set[asyncio.Task[None]] = set()

    def submit(self, key: Hashable, job: Job) -> None:
        """Queue ``job`` behind every earlier job of ``key``; must run on the event loop."""
        queue = self._queues.get(key)
        if queue is not None:
            queue.append(job)
            return
        self._queues[key] = deque([job])
        worker = asyncio.get_running_loop().create_task(self._drain(key))
        self._workers.add(worker)
        worker.add_done_callback(self._workers.discard)

    async def _drain(self, key: Hashable) -> None:
        queue = self._queues[key]
        try:
            while queue:
                job = queue[0]
                try:
                    await job()
                except Exception:
                    log.exception(
                        "job failed; its record stays uncommitted", extra={"key": str(key)}
                    )
                queue.popleft()
        finally:
            del self._queues[key]

    @property
    def active_keys(self) -> int:
        return len(self._queues)

    async def cancel_all(self) -> None:
        """Stop every worker (shutdown, after the grace period)."""
        for worker in list(self._workers):
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

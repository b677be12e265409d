"""Order per fulfillment: every piece of a shipment's work is a job on that shipment's FIFO.

Contract: ``submit(key, work, offset, job)`` queues the coroutine ``job`` behind every earlier
job of ``key`` (``KeyedDispatcher``) and hands its outcome to ``Done``. A job whose partition
was revoked before it started is closed unrun (its record stays undone). A job that raises is a
failure outside every contained path: ``Done.failed_unexpectedly``, record undone.

``drain`` stops a partition's work and waits, bounded, for what is in flight: revocation and
shutdown go through it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Hashable, Sequence
from typing import Any

from consumer.kafka.offsets import PartitionWork
from consumer.outcome import Outcome
from consumer.processing.done import Done
from consumer.processing.ordering import KeyedDispatcher

Job = Coroutine[Any, Any, Outcome]


class Jobs:
    def __init__(self, done: Done) -> None:
        self._done = done
        self._dispatcher = KeyedDispatcher()
        self._running: Counter[PartitionWork] = Counter()
        self._progress = asyncio.Condition()
        self._waiting = 0  # drains waiting on ``_progress``; jobs notify only when some wait

    def submit(
        self,
        key: Hashable,
        work: PartitionWork,
        offset: int | None,
        job: Job,
        *,
        timer: bool = False,
    ) -> None:
        """Queue ``job`` on ``key``'s FIFO; ``offset`` is its record's (None: it has none). A
        ``timer`` job was counted in ``work.timers_queued`` when queued and is uncounted here,
        whether it ran or not."""

        async def run() -> None:
            if work.revoked:
                job.close()
                if timer:
                    work.timers_queued -= 1
                return
            self._running[work] += 1
            try:
                self._done.mark(work, offset, await job)
            except Exception:
                self._done.failed_unexpectedly("a job", work)
            finally:
                if timer:
                    work.timers_queued -= 1
                self._running[work] -= 1
                if not self._running[work]:
                    del self._running[work]
                if self._waiting:
                    async with self._progress:
                        self._progress.notify_all()

        self._dispatcher.submit(key, run)

    async def drain(
        self, works: Sequence[PartitionWork], *, within: float, finish_queued: bool
    ) -> bool:
        """Stop work on ``works`` and wait for it. With ``finish_queued`` (shutdown) queued
        records may still complete ``within`` seconds; otherwise (revoke) only work already in
        flight finishes. True when nothing of theirs is still running."""
        deadline = time.monotonic() + within
        if finish_queued:  # the records; timers fire again from the state after a restart
            await self._wait(lambda: all(w.buffered == w.timers_queued for w in works), deadline)
        for work in works:
            work.revoked = True
        try:
            return await self._wait(lambda: not any(self._running[w] for w in works), deadline)
        finally:
            for work in works:
                work.given_up = True

    async def _wait(self, condition: Callable[[], bool], deadline: float) -> bool:
        self._waiting += 1
        try:
            async with self._progress:
                while not condition():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    try:
                        await asyncio.wait_for(self._progress.wait(), remaining)
                    except TimeoutError:
                        return condition()
            return True
        finally:
            self._waiting -= 1

    async def close(self) -> None:
        await self._dispatcher.cancel_all()

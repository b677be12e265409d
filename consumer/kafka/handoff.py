"""Every call the Kafka side makes onto the asyncio loop, and the pipeline entry points it uses.

Contract: records, restored state, released partitions and caught-up verdicts go to the loop as
``call_soon_threadsafe`` messages, so they run on the loop in the order this thread sent them
(a caught-up verdict queues behind the batch handed over before it). ``drain`` is the one
blocking call: it runs ``Processor.drain`` on the loop and waits for it, bounded, so a rebalance
or a shutdown cannot hang on an overloaded loop. Called from the Kafka thread and, for
``attach``, the restore threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Sequence
from typing import Protocol

from consumer.kafka.offsets import PartitionWork
from consumer.kafka.records import RawRecord
from consumer.state.packed import RestoredStates

log = logging.getLogger(__name__)

DRAIN_SLACK_SECONDS = 5.0
"""How much longer than its own bound the Kafka thread waits for a drain's answer."""


class PipelineEntry(Protocol):
    """What the Kafka side calls on the pipeline (always on the loop, through ``LoopHandoff``)."""

    def accept(self, records: list[RawRecord], /) -> None: ...

    def set_caught_up(self, work: PartitionWork, caught_up: bool, /) -> None: ...

    def attach(self, work: PartitionWork, restored: RestoredStates, /) -> None: ...

    def detach(self, works: list[PartitionWork], /) -> None: ...

    async def drain(
        self, works: Sequence[PartitionWork], *, within: float, finish_queued: bool
    ) -> bool: ...


class LoopHandoff:
    """The Kafka thread's side of the thread boundary to the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pipeline: PipelineEntry) -> None:
        self._loop = loop
        self._pipeline = pipeline

    def accept(self, batch: list[RawRecord]) -> None:
        self._loop.call_soon_threadsafe(self._pipeline.accept, batch)

    def set_caught_up(self, work: PartitionWork, caught_up: bool) -> None:
        self._loop.call_soon_threadsafe(self._pipeline.set_caught_up, work, caught_up)

    def attach(self, work: PartitionWork, restored: RestoredStates) -> None:
        self._loop.call_soon_threadsafe(self._pipeline.attach, work, restored)

    def detach(self, works: list[PartitionWork]) -> None:
        self._loop.call_soon_threadsafe(self._pipeline.detach, works)

    def drain(self, works: list[PartitionWork], timeout: float, *, finish_queued: bool) -> None:
        """Wait, on the loop, for the partitions' work; bounded so a rebalance cannot hang."""
        if not works:
            return
        future = asyncio.run_coroutine_threadsafe(
            self._pipeline.drain(works, within=timeout, finish_queued=finish_queued), self._loop
        )
        try:
            finished = future.result(timeout + DRAIN_SLACK_SECONDS)
        except concurrent.futures.TimeoutError:  # the loop is overloaded: do not crash here
            future.cancel()
            finished = False
        if not finished:
            log.warning(
                "calls still in flight after %.0fs; their records stay uncommitted", timeout
            )

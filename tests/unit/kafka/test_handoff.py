"""The Kafka thread's calls onto the loop: in order, and a drain that cannot hang the thread."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from consumer.kafka import handoff as handoff_module
from consumer.kafka.handoff import LoopHandoff
from consumer.kafka.offsets import PartitionWork


class RecordingPipeline:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.threads: set[str] = set()
        self.drain_takes = 0.0

    def _note(self, name: str, arg: Any) -> None:
        self.calls.append((name, arg))
        self.threads.add(threading.current_thread().name)

    def accept(self, records: list[Any], /) -> None:
        self._note("accept", len(records))

    def set_caught_up(self, work: PartitionWork, caught_up: bool, /) -> None:
        self._note("caught_up", caught_up)

    def attach(self, work: PartitionWork, restored: Any, /) -> None:
        self._note("attach", work.partition)

    def detach(self, works: list[PartitionWork], /) -> None:
        self._note("detach", len(works))

    async def drain(
        self, works: Sequence[PartitionWork], *, within: float, finish_queued: bool
    ) -> bool:
        self._note("drain", finish_queued)
        await asyncio.sleep(self.drain_takes)
        return True


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="the-loop")
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()


def _settle(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(5)


def test_messages_run_on_the_loop_in_the_order_sent(loop: asyncio.AbstractEventLoop) -> None:
    pipeline = RecordingPipeline()
    handoff = LoopHandoff(loop, pipeline)
    work = PartitionWork("t", 2)
    handoff.attach(work, object())  # type: ignore[arg-type]
    handoff.accept([object(), object()])  # type: ignore[list-item]
    handoff.set_caught_up(work, True)
    handoff.drain([work], 1.0, finish_queued=True)
    handoff.detach([work])
    _settle(loop)
    assert pipeline.calls == [
        ("attach", 2),
        ("accept", 2),
        ("caught_up", True),
        ("drain", True),
        ("detach", 1),
    ]
    assert pipeline.threads == {"the-loop"}


def test_draining_nothing_does_not_touch_the_loop(loop: asyncio.AbstractEventLoop) -> None:
    pipeline = RecordingPipeline()
    LoopHandoff(loop, pipeline).drain([], 1.0, finish_queued=False)
    _settle(loop)
    assert pipeline.calls == []


def test_a_drain_the_loop_does_not_answer_in_time_is_given_up(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handoff_module, "DRAIN_SLACK_SECONDS", 0.1)
    pipeline = RecordingPipeline()
    pipeline.drain_takes = 5.0  # an overloaded loop
    started = time.monotonic()
    LoopHandoff(loop, pipeline).drain([PartitionWork("t", 0)], 0.1, finish_queued=False)
    assert time.monotonic() - started < 2.0

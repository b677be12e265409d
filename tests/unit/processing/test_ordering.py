"""KeyedDispatcher: one key's jobs in order, different keys in parallel."""

import asyncio
import random

from consumer.processing.ordering import KeyedDispatcher


def test_one_key_in_order_different_keys_in_parallel() -> None:
    async def scenario() -> tuple[dict[str, list[int]], int]:
        dispatcher = KeyedDispatcher()
        seen: dict[str, list[int]] = {}
        running = 0
        peak = 0
        done = asyncio.Event()
        total = 0

        def job(key: str, number: int) -> object:
            async def run() -> None:
                nonlocal running, peak, total
                running += 1
                peak = max(peak, running)
                await asyncio.sleep(random.uniform(0, 0.005))
                seen.setdefault(key, []).append(number)
                running -= 1
                total += 1
                if total == 200:
                    done.set()

            return run

        for number in range(20):
            for key in "abcdefghij":
                dispatcher.submit(key, job(key, number))  # type: ignore[arg-type]
        await asyncio.wait_for(done.wait(), 10)
        assert dispatcher.active_keys == 0
        return seen, peak

    seen, peak = asyncio.run(scenario())
    assert all(numbers == list(range(20)) for numbers in seen.values())
    assert len(seen) == 10
    assert peak > 1


def test_a_failing_job_does_not_stop_its_key() -> None:
    async def scenario() -> list[str]:
        dispatcher = KeyedDispatcher()
        ran: list[str] = []
        finished = asyncio.Event()

        async def boom() -> None:
            ran.append("boom")
            raise RuntimeError("bug")

        async def after() -> None:
            ran.append("after")
            finished.set()

        dispatcher.submit("k", boom)
        dispatcher.submit("k", after)
        await asyncio.wait_for(finished.wait(), 5)
        return ran

    assert asyncio.run(scenario()) == ["boom", "after"]

import asyncio

from consumer.delivery.slots import Slots


def test_urgent_waiters_are_served_first_then_in_arrival_order() -> None:
    async def scenario() -> list[str]:
        slots = Slots(1)
        await slots.acquire()
        served: list[str] = []

        async def wait(name: str, urgent: bool) -> None:
            await slots.acquire(urgent=urgent)
            served.append(name)
            slots.release()

        waiters = [
            asyncio.create_task(wait("first", False)),
            asyncio.create_task(wait("second", False)),
            asyncio.create_task(wait("follow-up", True)),
        ]
        await asyncio.sleep(0)
        slots.release()
        await asyncio.gather(*waiters)
        return served

    assert asyncio.run(scenario()) == ["follow-up", "first", "second"]


def test_never_more_holders_than_slots() -> None:
    async def scenario() -> int:
        slots = Slots(3)
        holders = 0
        peak = 0

        async def work(urgent: bool) -> None:
            nonlocal holders, peak
            await slots.acquire(urgent=urgent)
            holders += 1
            peak = max(peak, holders)
            await asyncio.sleep(0.001)
            holders -= 1
            slots.release()

        await asyncio.gather(*(work(i % 2 == 0) for i in range(50)))
        return peak

    assert asyncio.run(scenario()) == 3


def test_a_cancelled_waiter_does_not_lose_a_slot() -> None:
    async def scenario() -> None:
        slots = Slots(1)
        await slots.acquire()
        waiter = asyncio.create_task(slots.acquire())
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        slots.release()
        await asyncio.wait_for(slots.acquire(), 1)

    asyncio.run(scenario())

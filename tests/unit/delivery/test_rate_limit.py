import asyncio
import time

from consumer.delivery.rate_limit import RateLimiter


def test_requests_are_spaced_by_the_rate() -> None:
    limiter = RateLimiter(per_second=100)

    async def scenario() -> float:
        start = time.monotonic()
        for _ in range(6):
            await limiter.acquire()
        return time.monotonic() - start

    # five gaps of 10 ms each: sleeping can only make it longer, never shorter
    assert asyncio.run(scenario()) >= 0.049


def test_zero_means_unlimited() -> None:
    limiter = RateLimiter(per_second=0)

    async def scenario() -> None:
        for _ in range(1000):
            await limiter.acquire()

    asyncio.run(asyncio.wait_for(scenario(), 1))

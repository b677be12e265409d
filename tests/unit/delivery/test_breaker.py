"""The breaker on its own: one probe at a time, abandoned waiters leave without a probe turn, and a
probe that ends without a verdict (not sent, an exception, a cancellation) is handed on."""

import asyncio

import pytest

from consumer.delivery.breaker import ABANDON_CHECK_SECONDS, Breaker, Pass, Turn

# Real time allowed for a turn to be handed out: several abandonment checks, on a busy machine.
PROMPT = 20 * ABANDON_CHECK_SECONDS
# Real time over which nothing may happen: a few abandonment checks.
QUIET = 3 * ABANDON_CHECK_SECONDS


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Caller:
    """A task that takes a turn and holds it until told to leave, optionally raising (an
    abandoned call leaves at once)."""

    def __init__(self, breaker: Breaker) -> None:
        self.is_abandoned = False
        self.turn: asyncio.Future[Turn] = asyncio.get_running_loop().create_future()
        self.leave: asyncio.Future[BaseException | None] = (
            asyncio.get_running_loop().create_future()
        )
        self.task = asyncio.create_task(self._run(breaker))

    async def _run(self, breaker: Breaker) -> None:
        async with breaker.turn(lambda: self.is_abandoned) as turn:
            self.turn.set_result(turn)
            if turn.abandoned:
                return
            error = await self.leave
            if error is not None:
                raise error


async def turn_of(caller: Caller) -> Turn:
    try:
        return await asyncio.wait_for(asyncio.shield(caller.turn), PROMPT)
    except TimeoutError:
        raise AssertionError("no turn handed out in time") from None


def make_breaker(
    clock: FakeClock, changes: list[bool] | None = None, *, closed_by_any_success: bool = True
) -> Breaker:
    return Breaker(
        "t",
        probe_interval=lambda n: 10.0 * n,
        closed_by_any_success=closed_by_any_success,
        on_change=None if changes is None else changes.append,
        clock=clock,
    )


async def opened(breaker: Breaker) -> None:
    """Open ``breaker`` through a failed call, as the deliverer does."""
    async with breaker.turn(lambda: False) as turn:
        assert turn.kind is Pass.GO
        breaker.failed(turn)
    assert breaker.is_open


def test_open_breaker_lets_exactly_one_probe_through_after_each_interval() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        changes: list[bool] = []
        breaker = make_breaker(clock, changes)
        await opened(breaker)  # first probe at 10 s

        callers = [Caller(breaker) for _ in range(3)]
        await asyncio.sleep(QUIET)
        assert not any(c.turn.done() for c in callers), "a turn before the probe interval"

        clock.now = 10.0
        first = await turn_of(callers[0])
        assert first.is_probe
        await asyncio.sleep(QUIET)
        assert not callers[1].turn.done(), "a second probe while the first is out"

        breaker.failed(first)  # next probe 20 s later
        callers[0].leave.set_result(None)
        await asyncio.sleep(QUIET)
        assert not callers[1].turn.done(), "a probe before the second interval"

        clock.now = 30.0
        second = await turn_of(callers[1])
        assert second.is_probe
        breaker.succeeded(second)
        assert (await turn_of(callers[2])).kind is Pass.GO
        for caller in callers[1:]:
            caller.leave.set_result(None)
        await asyncio.gather(*(c.task for c in callers))
        assert changes == [True, False]

    asyncio.run(scenario())


def test_an_abandoned_waiter_leaves_promptly_and_never_takes_the_probe() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        breaker = make_breaker(clock)
        await opened(breaker)
        revoked, late, other = Caller(breaker), Caller(breaker), Caller(breaker)
        await asyncio.sleep(QUIET)

        revoked.is_abandoned = True
        assert (await turn_of(revoked)).abandoned
        await revoked.task
        assert not late.turn.done() and not other.turn.done()

        # Abandoned at the moment the probe falls due, first in line: the probe skips it.
        late.is_abandoned = True
        clock.now = 10.0
        assert (await turn_of(other)).is_probe
        assert (await turn_of(late)).abandoned
        other.leave.set_result(None)
        await asyncio.gather(other.task, late.task)

        # Already abandoned when it arrives: it does not wait at all.
        async with breaker.turn(lambda: True) as turn:
            assert turn.abandoned

    asyncio.run(scenario())


@pytest.mark.parametrize("ending", ["not sent", "error", "cancelled"])
def test_a_probe_without_a_verdict_hands_the_probe_on_at_once(ending: str) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        breaker = make_breaker(clock)
        await opened(breaker)
        clock.now = 10.0
        probe, waiting = Caller(breaker), Caller(breaker)
        assert (await turn_of(probe)).is_probe
        if ending == "cancelled":
            probe.task.cancel()
        else:
            probe.leave.set_result(RuntimeError("bug") if ending == "error" else None)
        await asyncio.gather(probe.task, return_exceptions=True)
        # No new interval: the clock has not moved, and the next waiter probes now.
        assert (await turn_of(waiting)).is_probe
        assert breaker.is_open
        waiting.leave.set_result(None)
        await waiting.task

    asyncio.run(scenario())


def test_a_waiter_cancelled_just_as_it_is_handed_the_probe_hands_it_on() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        breaker = make_breaker(clock)
        await opened(breaker)
        clock.now = 10.0
        async with breaker.turn(lambda: False) as held:
            assert held.is_probe
            cancelled, waiting = Caller(breaker), Caller(breaker)
            await asyncio.sleep(QUIET)
        # Leaving the block handed the probe to ``cancelled`` without a suspension; it is
        # cancelled before it could run, so it holds a probe turn it never sees.
        assert not cancelled.turn.done(), "the task resumed before it could be cancelled"
        cancelled.task.cancel()
        await asyncio.gather(cancelled.task, return_exceptions=True)
        assert (await turn_of(waiting)).is_probe
        waiting.leave.set_result(None)
        await waiting.task

    asyncio.run(scenario())


def test_only_the_probe_closes_an_auth_breaker() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        auth = make_breaker(clock, closed_by_any_success=False)
        circuit = make_breaker(clock, closed_by_any_success=True)
        for breaker in (auth, circuit):
            async with breaker.turn(lambda: False) as in_flight:  # went out before the failure
                await opened(breaker)
                breaker.succeeded(in_flight)
        assert auth.is_open, "a success of another call closed the auth breaker"
        assert not circuit.is_open, "Redo answered: the circuit closes on any success"

    asyncio.run(scenario())


def test_holds_only_calls_that_are_not_the_probe() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        breaker = make_breaker(clock)
        async with breaker.turn(lambda: False) as early:
            assert not breaker.holds(early)
            await opened(breaker)
            assert breaker.holds(early), "a call queued before the breaker opened went out"
        clock.now = 10.0
        async with breaker.turn(lambda: False) as probe:
            assert probe.is_probe and not breaker.holds(probe)

    asyncio.run(scenario())

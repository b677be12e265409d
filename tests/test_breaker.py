import asyncio

from consumer.breaker import Gate


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_closed_gate_lets_exactly_one_probe_through_after_the_interval() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        changes: list[bool] = []
        gate = Gate("t", probe_interval=lambda n: 10.0 * n, on_change=changes.append, clock=clock)
        assert await gate.wait_turn() is False  # open: no probe needed
        await gate.close()
        assert gate.closed

        waiters = [asyncio.create_task(gate.wait_turn()) for _ in range(3)]
        await asyncio.sleep(0.01)
        assert not any(w.done() for w in waiters)

        clock.now = 10.0
        async with gate._changed:
            gate._changed.notify_all()
        await asyncio.sleep(0.01)
        probes = [w for w in waiters if w.done()]
        assert len(probes) == 1 and probes[0].result() is True

        await gate.probe_failed()  # next probe only 20 s later
        await asyncio.sleep(0.01)
        assert sum(w.done() for w in waiters) == 1

        clock.now = 30.0
        async with gate._changed:
            gate._changed.notify_all()
        await asyncio.sleep(0.01)
        assert sum(w.done() for w in waiters) == 2
        await gate.open()
        results = await asyncio.gather(*waiters)
        assert sorted(results) == [False, True, True]
        assert changes == [True, False]

    asyncio.run(scenario())

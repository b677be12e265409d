"""Jobs: each shipment's work in order on its FIFO, revokes and drains bounded."""

from __future__ import annotations

import asyncio

from consumer.outcome import Outcome
from consumer.processing.done import Done
from consumer.processing.jobs import Jobs
from tests.unit.processing.fakes import partition_work, until


def test_a_shipments_jobs_run_in_order_and_their_records_are_done() -> None:
    async def run() -> tuple[list[int], int | None]:
        jobs, work, ran = Jobs(Done()), partition_work(), []

        async def job(number: int) -> Outcome:
            await asyncio.sleep(0.001 * (3 - number))  # the first is the slowest
            ran.append(number)
            return Outcome.SENT

        for number in range(3):
            work.register(number)
            jobs.submit("f1", work, number, job(number))
        await until(lambda: work.committable == 3)
        return ran, work.committable

    assert asyncio.run(run()) == ([0, 1, 2], 3)


def test_a_job_of_a_revoked_partition_is_closed_unrun_and_its_timer_uncounted() -> None:
    async def run() -> tuple[list[str], int, int | None]:
        jobs, work, ran = Jobs(Done()), partition_work(), []

        async def job() -> Outcome:
            ran.append("ran")
            return Outcome.TIMERS

        work.register(0)
        work.timers_queued = 1
        jobs.submit("f1", work, None, job(), timer=True)
        work.revoked = True
        await asyncio.sleep(0.01)
        return ran, work.timers_queued, work.committable

    assert asyncio.run(run()) == ([], 0, None)


def test_a_job_that_raises_leaves_its_record_undone_and_the_fifo_going() -> None:
    async def run() -> tuple[Done, int | None]:
        done = Done()
        jobs, work = Jobs(done), partition_work()

        async def broken() -> Outcome:
            raise RuntimeError("outside every contained path")

        async def fine() -> Outcome:
            return Outcome.NO_CALL

        work.register(0)
        work.register(1)
        jobs.submit("f1", work, 0, broken())
        jobs.submit("f1", work, 1, fine())
        await until(lambda: done.unexpected_failures == 1)
        await asyncio.sleep(0.01)
        return done, work.committable

    done, committable = asyncio.run(run())
    assert committable is None, "offset 1 is done, but nothing passes the undone offset 0"
    assert done.unexpected_failures == 1


def test_a_revoke_drain_waits_for_the_job_in_flight_but_not_for_queued_ones() -> None:
    async def run() -> tuple[bool, list[str], bool]:
        jobs, work, ran = Jobs(Done()), partition_work(), []
        release = asyncio.Event()

        async def in_flight() -> Outcome:
            ran.append("in flight")
            await release.wait()
            return Outcome.SENT

        async def queued() -> Outcome:
            ran.append("queued")
            return Outcome.SENT

        jobs.submit("f1", work, None, in_flight())
        jobs.submit("f1", work, None, queued())
        await until(lambda: bool(ran))
        drain = asyncio.create_task(jobs.drain([work], within=5, finish_queued=False))
        await asyncio.sleep(0.01)
        assert not drain.done() and work.revoked and not work.given_up
        release.set()
        finished = await drain
        await asyncio.sleep(0.01)
        return finished, ran, work.given_up

    assert asyncio.run(run()) == (True, ["in flight"], True)


def test_a_drain_past_its_deadline_reports_the_work_still_running() -> None:
    async def run() -> bool:
        jobs, work = Jobs(Done()), partition_work()

        async def stuck() -> Outcome:
            await asyncio.sleep(10)
            return Outcome.SENT

        jobs.submit("f1", work, None, stuck())
        await asyncio.sleep(0)
        finished = await jobs.drain([work], within=0.05, finish_queued=False)
        await jobs.close()
        return finished

    assert asyncio.run(run()) is False


def test_a_shutdown_drain_lets_queued_records_finish() -> None:
    async def run() -> tuple[bool, int | None]:
        jobs, work = Jobs(Done()), partition_work()

        async def job() -> Outcome:
            await asyncio.sleep(0.005)
            return Outcome.SENT

        for offset in range(3):
            work.register(offset)
            jobs.submit("f1", work, offset, job())
        finished = await jobs.drain([work], within=5, finish_queued=True)
        return finished, work.committable

    assert asyncio.run(run()) == (True, 3)

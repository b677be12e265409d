"""DeadLetter: records, timers and refused calls kept with their reason, in shipment order."""

from __future__ import annotations

import asyncio

from consumer.errors import RedoRejectedError
from consumer.outcome import Outcome
from consumer.processing.dead_letter import describe
from consumer.processing.timer_job import TimerOrigin
from tests.unit.processing.fakes import Chain, call, fail_times, partition_work, raw, until


def test_a_submitted_record_is_dead_lettered_with_its_reason_and_done() -> None:
    async def run() -> tuple[Chain, int | None]:
        chain, work = Chain(), partition_work()
        chain.dead_letter.submit(raw(work, 0, b"f1", b"\xff"), "decode", "bad bytes")
        chain.dead_letter.submit(raw(work, 1, None, b"x"), "missing_key", "record has no key")
        await until(lambda: work.committable == 2)
        return chain, work.committable

    chain, committable = asyncio.run(run())
    assert committable == 2
    assert chain.reasons() == ["decode", "missing_key"]
    assert chain.dead_letters()[0].value == b"\xff", "the original bytes are kept"


def test_a_dead_letter_waits_behind_its_shipments_earlier_work() -> None:
    async def run() -> list[str]:
        chain, work, order = Chain(), partition_work(), []
        release = asyncio.Event()

        async def earlier() -> Outcome:
            await release.wait()
            order.append("earlier job")
            return Outcome.SENT

        chain.jobs.submit("f1", work, None, earlier())
        chain.dead_letter.submit(raw(work, 0, b"f1", b"x"), "decode", "bad")
        await asyncio.sleep(0.01)
        order.append(f"{len(chain.dead_letters())} dead letters")
        release.set()
        await until(lambda: work.committable == 1)
        return order

    assert asyncio.run(run()) == ["0 dead letters", "earlier job"]


def test_a_timer_and_a_refused_call_are_dead_lettered_from_their_origin() -> None:
    chain, work = Chain(), partition_work(2)
    origin = TimerOrigin("tracking", 2, b"f1")
    assert asyncio.run(chain.dead_letter.timer(work, origin, "boom")) is Outcome.DEAD_LETTERED
    refused = RedoRejectedError("400", status_code=400, body="no")
    assert asyncio.run(chain.dead_letter.call(work, origin, call(), refused))
    assert chain.reasons() == ["processing_error", "redo_400"]
    assert {w.headers["dlq.source.offset"] for w in chain.dead_letters()} == {b"-1"}


def test_a_dead_letter_given_up_on_revoke_leaves_its_record_undone() -> None:
    chain, work = Chain(), partition_work()
    work.revoked = True
    chain.producer.fail = fail_times(5)
    record = raw(work, 0, b"f1", b"x")
    assert asyncio.run(chain.dead_letter.record(record, "decode", "bad")) is Outcome.ABANDONED
    refused = RedoRejectedError("400", status_code=400)
    assert not asyncio.run(chain.dead_letter.call(work, record, call(), refused))


def test_an_error_is_described_by_its_type_and_message() -> None:
    assert describe(ZeroDivisionError("the rules broke")) == "ZeroDivisionError: the rules broke"

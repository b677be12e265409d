"""KafkaWrites: a write retried until acknowledged, held writes visible, given up on revoke."""

from __future__ import annotations

import asyncio

import pytest

from consumer.ops import metrics
from consumer.processing.writes import KafkaWrites
from tests.unit.processing.fakes import FAST, NO_TOPIC, REFUSED, partition_work


def test_a_refused_write_is_retried_until_it_is_acknowledged() -> None:
    attempts = []

    async def write() -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise REFUSED

    assert asyncio.run(KafkaWrites(FAST).until_written(partition_work(), write))
    assert len(attempts) == 3


def test_a_permanent_refusal_is_counted_as_held_while_it_lasts() -> None:
    writes = KafkaWrites(FAST)
    gauge = metrics.KAFKA_WRITES_HELD.labels(topic=NO_TOPIC.topic)
    seen: list[tuple[int, float]] = []

    async def write() -> None:
        seen.append((writes.writes_held, gauge._value.get()))
        if len(seen) < 3:
            raise NO_TOPIC

    before = gauge._value.get()
    assert asyncio.run(writes.until_written(partition_work(), write))
    assert [held for held, _ in seen] == [0, 1, 1], "held from the first refusal on, once"
    assert seen[-1][1] == before + 1
    assert writes.writes_held == 0 and gauge._value.get() == before


def test_a_revoke_gives_the_write_up_after_a_failed_attempt() -> None:
    work = partition_work()
    attempts = []

    async def write() -> None:
        attempts.append(1)
        work.revoked = True
        raise REFUSED

    assert not asyncio.run(KafkaWrites(FAST).until_written(work, write))
    assert len(attempts) == 1


def test_a_revoked_partition_still_gets_one_attempt() -> None:
    """What the write records is done (e.g. a call Redo has): it must be tried."""
    work = partition_work()
    work.revoked = True
    written = []

    async def write() -> None:
        written.append(1)

    assert asyncio.run(KafkaWrites(FAST).until_written(work, write))
    assert written == [1]


def test_a_failure_that_is_not_a_broker_refusal_is_raised() -> None:
    async def write() -> None:
        raise ValueError("encoder bug")

    with pytest.raises(ValueError):
        asyncio.run(KafkaWrites(FAST).until_written(partition_work(), write))

"""Liveness watches both loops; readiness the group, restores, the default secret, held writes —
all read from ``Signals``."""

import asyncio

import pytest

from consumer.ops import health as health_module
from consumer.ops.health import LIVENESS_TIMEOUT_SECONDS, Health, keep_beating
from consumer.signals import Signals


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Counters:
    def __init__(self) -> None:
        self.writes_held = 0
        self.unexpected_failures = 0


def test_a_stalled_asyncio_loop_fails_liveness_while_the_kafka_thread_beats() -> None:
    clock = FakeClock()
    signals = Signals(clock=clock)
    health = Health(signals)
    signals.beat_kafka()
    assert health.alive() == (True, "ok")

    clock.now += LIVENESS_TIMEOUT_SECONDS + 1
    signals.beat_kafka()  # the Kafka thread still polls; nobody beats for the loop
    alive, why = health.alive()
    assert not alive and "asyncio loop" in why

    signals.beat_loop()
    assert health.alive() == (True, "ok")


def test_a_stalled_kafka_thread_fails_liveness_once_it_was_started() -> None:
    clock = FakeClock()
    signals = Signals(clock=clock)
    health = Health(signals)
    clock.now += 10 * LIVENESS_TIMEOUT_SECONDS
    signals.beat_loop()
    assert health.alive() == (True, "ok"), "waiting for the broker at start-up is not death"

    signals.beat_kafka()
    clock.now += LIVENESS_TIMEOUT_SECONDS + 1
    signals.beat_loop()
    alive, why = health.alive()
    assert not alive and "Kafka loop" in why
    assert health.ready() == (False, why)


def test_keep_beating_beats_while_the_loop_turns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health_module, "LOOP_BEAT_SECONDS", 0.01)
    clock = FakeClock()
    signals = Signals(clock=clock)
    health = Health(signals)

    async def scenario() -> None:
        beating = asyncio.create_task(keep_beating(signals))
        clock.now += LIVENESS_TIMEOUT_SECONDS + 1
        assert not health.alive()[0]
        await asyncio.sleep(0.5)  # fifty beat periods: at least one beat on a busy machine
        assert health.alive() == (True, "ok")
        beating.cancel()

    asyncio.run(scenario())


def test_readiness_needs_the_group_restored_state_and_the_default_secret() -> None:
    signals = Signals()
    health = Health(signals)
    assert health.ready() == (False, "not yet assigned by the consumer group")
    signals.start_up_problem = "Kafka not reachable at k:9092: timed out"
    assert health.ready() == (False, signals.start_up_problem)
    signals.start_up_problem = None
    signals.joined = True
    signals.restore_started(("t", 0))
    assert health.ready() == (False, "restoring state of 1 partition(s)")
    signals.restore_finished(("t", 0))
    assert health.ready() == (True, "ok")
    signals.auth_blocked = True
    assert health.ready() == (False, "Redo refuses the default API secret (401/403)")


def test_held_writes_and_unexpected_failures_are_read_from_the_pipeline_at_once() -> None:
    signals = Signals()
    signals.joined = True
    health = Health(signals)
    counters = Counters()
    signals.watch_pipeline(counters)
    counters.writes_held = 2
    assert health.ready() == (False, "2 Kafka write(s) held: the broker refuses them (see the log)")
    counters.writes_held = 0
    counters.unexpected_failures = 1
    alive, why = health.alive()
    assert not alive and "1 unexpected failure(s)" in why

"""Liveness watches both loops; readiness only the default secret among the auth breakers."""

import asyncio

import pytest

from consumer.ops import health as health_module
from consumer.ops.health import LIVENESS_TIMEOUT_SECONDS, Health, keep_beating


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_stalled_asyncio_loop_fails_liveness_while_the_kafka_thread_beats() -> None:
    clock = FakeClock()
    health = Health(auth_blocked=lambda: False, clock=clock)
    health.beat()
    assert health.alive() == (True, "ok")

    clock.now += LIVENESS_TIMEOUT_SECONDS + 1
    health.beat()  # the Kafka thread still polls; nobody beats for the loop
    alive, why = health.alive()
    assert not alive and "asyncio loop" in why

    health.loop_beat()
    assert health.alive() == (True, "ok")


def test_a_stalled_kafka_thread_fails_liveness_once_it_was_started() -> None:
    clock = FakeClock()
    health = Health(auth_blocked=lambda: False, clock=clock)
    clock.now += 10 * LIVENESS_TIMEOUT_SECONDS
    health.loop_beat()
    assert health.alive() == (True, "ok"), "waiting for the broker at start-up is not death"

    health.beat()
    clock.now += LIVENESS_TIMEOUT_SECONDS + 1
    health.loop_beat()
    alive, why = health.alive()
    assert not alive and "Kafka loop" in why
    assert health.ready() == (False, why)


def test_keep_beating_beats_while_the_loop_turns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health_module, "LOOP_BEAT_SECONDS", 0.01)
    clock = FakeClock()
    health = Health(auth_blocked=lambda: False, clock=clock)

    async def scenario() -> None:
        beating = asyncio.create_task(keep_beating(health))
        clock.now += LIVENESS_TIMEOUT_SECONDS + 1
        assert not health.alive()[0]
        await asyncio.sleep(0.5)  # fifty beat periods: at least one beat on a busy machine
        assert health.alive() == (True, "ok")
        beating.cancel()

    asyncio.run(scenario())


def test_readiness_needs_the_group_restored_state_and_the_default_secret() -> None:
    blocked = False
    health = Health(auth_blocked=lambda: blocked)
    assert health.ready() == (False, "not yet assigned by the consumer group")
    health.start_up_problem = "Kafka not reachable at k:9092: timed out"
    assert health.ready() == (False, health.start_up_problem)
    health.start_up_problem = None
    health.joined = True
    health.restoring.add(("t", 0))
    assert "restoring" in health.ready()[1]
    health.restoring.clear()
    assert health.ready() == (True, "ok")
    blocked = True
    assert health.ready() == (False, "Redo refuses the default API secret (401/403)")

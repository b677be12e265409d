"""The retry policy, driven by a scripted sender (the real HTTP path is in the e2e tests)."""

import asyncio
import dataclasses
import itertools
import time
from collections.abc import Iterable
from datetime import UTC, datetime

import pytest

from consumer.delivery.deliverer import Deliverer
from consumer.delivery.retry import RetryPolicy
from consumer.errors import (
    RedoAuthError,
    RedoError,
    RedoNotFoundError,
    RedoRejectedError,
    RedoRetryableError,
)
from consumer.model import CallKind, RedoCall
from consumer.outcome import Outcome
from consumer.redo.secrets import DEFAULT_SECRET
from consumer.signals import Signals

CALL = RedoCall(CallKind.STATUS, "s", "o", "f", "in_transit", datetime(2026, 1, 1, tzinfo=UTC))
FAST = RetryPolicy(
    initial_seconds=0.001,
    max_seconds=0.01,
    not_found_window_seconds=0.05,
    auth_retry_seconds=0.01,
    circuit_failure_threshold=3,
)


class ScriptedSender:
    def __init__(self, script: Iterable[RedoError | None]) -> None:
        self.script = list(script)
        self.attempts = 0

    async def send(self, call: RedoCall) -> None:
        self.attempts += 1
        outcome = self.script.pop(0) if self.script else None
        if outcome is not None:
            raise outcome


class Secrets:
    """The provider's interface to the deliverer: stores in ``own`` have their own secret."""

    def __init__(self, own: frozenset[str] = frozenset()) -> None:
        self.own = own
        self.reloads = 0

    def reload(self) -> None:
        self.reloads += 1

    def secret_name(self, store_id: str) -> str:
        return f"store:{store_id}" if store_id in self.own else DEFAULT_SECRET


def deliver(
    script: list[RedoError | None], *, written: bool = True
) -> tuple[Outcome, ScriptedSender, list[RedoError], Deliverer, Secrets]:
    sender = ScriptedSender(script)
    secrets = Secrets()
    dead: list[RedoError] = []

    async def dead_letter(call: RedoCall, exc: RedoError) -> bool:
        dead.append(exc)
        return written

    async def run() -> tuple[Outcome, Deliverer]:
        deliverer = Deliverer(
            sender,
            secrets,
            FAST,
            max_in_flight=4,
            signals=Signals(),
        )
        outcome = await deliverer.deliver(CALL, abandoned=lambda: False, dead_letter=dead_letter)
        return outcome, deliverer

    outcome, deliverer = asyncio.run(run())
    return outcome, sender, dead, deliverer, secrets


def test_retryable_failures_are_retried_until_success() -> None:
    failures = [RedoRetryableError("503", status_code=503) for _ in range(6)]
    outcome, sender, dead, deliverer, _ = deliver([*failures, None])
    assert outcome is Outcome.SENT
    assert sender.attempts == 7
    assert not dead
    assert not deliverer.gates.circuit.is_open  # the success closed the circuit again


def test_400_is_dead_lettered_without_retry() -> None:
    outcome, sender, dead, _, _ = deliver([RedoRejectedError("bad", status_code=400)])
    assert outcome is Outcome.DEAD_LETTERED
    assert sender.attempts == 1
    assert [e.status_code for e in dead] == [400]


def test_a_dead_letter_given_up_leaves_the_call_not_done() -> None:
    """A revoke during the dead-letter write: the call is abandoned, so its record is not done
    (it would otherwise be committed without a dead letter anywhere)."""
    outcome, _, dead, _, _ = deliver([RedoRejectedError("bad", status_code=400)], written=False)
    assert outcome is Outcome.ABANDONED
    assert [e.status_code for e in dead] == [400]


def test_404_is_retried_for_the_window_then_dead_lettered() -> None:
    outcome, sender, dead, _, _ = deliver(
        [RedoNotFoundError("nf", status_code=404) for _ in range(10_000)]
    )
    assert outcome is Outcome.DEAD_LETTERED
    assert sender.attempts > 1
    assert [e.status_code for e in dead] == [404]


def test_404_then_found_is_sent() -> None:
    outcome, _, dead, _, _ = deliver([RedoNotFoundError("nf", status_code=404), None])
    assert outcome is Outcome.SENT and not dead


def test_401_blocks_then_a_probe_rereads_the_secret() -> None:
    outcome, sender, dead, deliverer, secrets = deliver(
        [RedoAuthError("401", status_code=401), RedoAuthError("401", status_code=401), None]
    )
    assert outcome is Outcome.SENT
    assert sender.attempts == 3
    assert secrets.reloads == 2
    assert not deliverer.gates.auth(DEFAULT_SECRET).is_open
    assert not dead


def test_retry_after_is_a_floor_on_the_delay() -> None:
    policy = RetryPolicy(initial_seconds=0.001, max_seconds=0.002)
    assert all(policy.backoff(attempt, retry_after=3.0) >= 3.0 for attempt in range(5))
    assert all(0 <= policy.backoff(attempt) <= 0.002 for attempt in range(20))


@pytest.mark.parametrize("attempts_before_abandon", [1, 3])
def test_abandoned_delivery_stops_retrying(attempts_before_abandon: int) -> None:
    sender = ScriptedSender([RedoRetryableError("x") for _ in range(100)])

    async def run() -> Outcome:
        deliverer = Deliverer(
            sender,
            Secrets(),
            FAST,
            max_in_flight=1,
            signals=Signals(),
        )

        async def dead_letter(call: RedoCall, exc: RedoError) -> bool:
            raise AssertionError("no dead letter expected")

        return await deliverer.deliver(
            CALL,
            abandoned=lambda: sender.attempts >= attempts_before_abandon,
            dead_letter=dead_letter,
        )

    assert asyncio.run(run()) is Outcome.ABANDONED
    assert sender.attempts == attempts_before_abandon


class StoreSender:
    """Redo refusing the secret of store ``refused`` and accepting every other call."""

    def __init__(self, refused: str) -> None:
        self.refused = refused
        self.refused_at: list[float] = []
        self.sent = 0

    async def send(self, call: RedoCall) -> None:
        if call.store_id == self.refused:
            self.refused_at.append(time.monotonic())
            raise RedoAuthError("401", status_code=401)
        self.sent += 1


async def no_dead_letter(call: RedoCall, exc: RedoError) -> None:
    raise AssertionError(f"no dead letter expected, got {exc}")


def test_a_refused_store_secret_holds_only_that_store_and_probes_once_per_interval() -> None:
    interval = 0.2
    policy = dataclasses.replace(FAST, auth_retry_seconds=interval)
    sender = StoreSender(refused="bad")
    revoked = False

    async def run() -> Deliverer:
        deliverer = Deliverer(
            sender,
            Secrets(own=frozenset({"bad"})),  # type: ignore[arg-type]
            policy,
            max_in_flight=8,
            signals=Signals(),
        )
        refused = [
            asyncio.create_task(
                deliverer.deliver(
                    dataclasses.replace(CALL, store_id="bad", fulfillment_id=f"bad-{n}"),
                    abandoned=lambda: revoked,
                    dead_letter=no_dead_letter,
                )
            )
            for n in range(5)
        ]

        async def other_store(number: int) -> None:
            call = dataclasses.replace(CALL, store_id="good", fulfillment_id=f"good-{number}")
            for _ in range(40):  # each success used to reopen the one shared auth gate
                outcome = await deliverer.deliver(
                    call, abandoned=lambda: False, dead_letter=no_dead_letter
                )
                assert outcome is Outcome.SENT
                await asyncio.sleep(0.02)

        await asyncio.gather(*(other_store(n) for n in range(10)))
        assert deliverer.gates.auth("store:bad").is_open
        assert not deliverer.gates.auth(DEFAULT_SECRET).is_open, "readiness would flap"
        nonlocal revoked
        revoked = True
        outcomes = await asyncio.wait_for(asyncio.gather(*refused), 2.0)
        assert set(outcomes) == {Outcome.ABANDONED}
        return deliverer

    asyncio.run(run())
    assert sender.sent == 400, "the other store's calls were held"
    attempts = sender.refused_at
    # The calls that went out before the first 401 opened the breaker, then one probe at a time,
    # each at least ``interval`` after the failure before it (0.8 s or more of other calls: 3+).
    first_refusal = attempts[0]
    probes = [t for t in attempts if t - first_refusal >= interval / 2]
    assert len(probes) >= 2, f"too few probes in the window: {attempts}"
    assert len(probes) <= (attempts[-1] - first_refusal) / interval + 1
    timeline = [first_refusal, *probes]
    gaps = [later - earlier for earlier, later in itertools.pairwise(timeline)]
    assert min(gaps) >= interval * 0.99, f"probes closer than {interval}s: {gaps}"


def test_a_call_waiting_at_an_open_circuit_leaves_when_revoked_without_probing() -> None:
    policy = RetryPolicy(initial_seconds=5.0, max_seconds=60.0)  # first probe 10 s after opening
    sender = ScriptedSender([])
    revoked = False

    async def run() -> Outcome:
        deliverer = Deliverer(
            sender,
            Secrets(),  # type: ignore[arg-type]
            policy,
            max_in_flight=1,
            signals=Signals(),
        )
        for breaker in (deliverer.gates.circuit, deliverer.gates.auth(DEFAULT_SECRET)):
            async with breaker.turn(lambda: False) as turn:
                breaker.failed(turn)
        waiting = asyncio.create_task(
            deliverer.deliver(CALL, abandoned=lambda: revoked, dead_letter=no_dead_letter)
        )
        await asyncio.sleep(0.3)
        assert not waiting.done()
        nonlocal revoked
        revoked = True
        started = time.monotonic()
        outcome = await asyncio.wait_for(waiting, 2.0)
        assert time.monotonic() - started < 1.0, "the revoked call did not leave promptly"
        return outcome

    assert asyncio.run(run()) is Outcome.ABANDONED
    assert sender.attempts == 0

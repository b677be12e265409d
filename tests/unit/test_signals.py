"""``Signals``: each field's writer reaches its reader (deliverer → Kafka thread and health,
Kafka thread → health), and the restoring count is safe to read while the Kafka thread writes."""

from __future__ import annotations

import threading

from pydantic import SecretStr

from consumer.delivery.deliverer import Deliverer
from consumer.delivery.retry import RetryPolicy
from consumer.model import RedoCall
from consumer.ops import metrics
from consumer.redo.secrets import DEFAULT_SECRET, SecretProvider
from consumer.signals import Signals


class _Sender:
    async def send(self, call: RedoCall) -> None:
        """Never called."""

    async def aclose(self) -> None:
        """Nothing to close."""


def _deliverer(signals: Signals) -> Deliverer:
    return Deliverer(
        _Sender(),
        SecretProvider(secret=SecretStr("s")),
        RetryPolicy(initial_seconds=0.01, max_seconds=0.01),
        max_in_flight=1,
        signals=signals,
    )


def test_a_fresh_signals_object_is_not_ready_and_holds_nothing() -> None:
    signals = Signals()
    assert not signals.circuit_open and not signals.auth_blocked and not signals.joined
    assert signals.restoring == 0 and signals.held_writes == 0 and signals.unexpected_failures == 0
    assert signals.kafka_beat is None


def test_the_circuit_mirrors_into_signals_and_the_gauge() -> None:
    signals = Signals()
    deliverer = _deliverer(signals)
    deliverer.gates.circuit._set_open(True)
    assert signals.circuit_open and metrics.CIRCUIT_OPEN._value.get() == 1
    deliverer.gates.circuit._set_open(False)
    assert not signals.circuit_open and metrics.CIRCUIT_OPEN._value.get() == 0


def test_only_the_default_secret_blocks_readiness() -> None:
    signals = Signals()
    deliverer = _deliverer(signals)
    deliverer.gates.auth("store:acme")._set_open(True)
    assert not signals.auth_blocked
    deliverer.gates.auth(DEFAULT_SECRET)._set_open(True)
    assert signals.auth_blocked
    deliverer.gates.auth(DEFAULT_SECRET)._set_open(False)
    assert not signals.auth_blocked


def test_restoring_counts_assignments_not_partitions() -> None:
    signals = Signals()
    first, second = object(), object()  # two assignments of one partition
    signals.restore_started(first)
    signals.restore_started(second)
    signals.restore_finished(first)
    signals.restore_finished(first)  # finishing twice (positioned, then revoked) is harmless
    assert signals.restoring == 1


def test_counting_restores_while_another_thread_changes_them_never_fails() -> None:
    signals = Signals()
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            signals.restore_started(n)
            signals.restore_finished(n - 50)
            n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        counts = [signals.restoring for _ in range(20_000)]
    finally:
        stop.set()
        thread.join()
    assert all(0 <= count <= 51 for count in counts)

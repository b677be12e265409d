"""The breakers every Redo call passes: one auth breaker per secret, and the circuit.

The circuit opens after ``circuit_failure_threshold`` retryable failures in a row (or a failed
probe) and is mirrored to ``Signals.circuit_open``, which pauses consumption on the Kafka thread;
any answer from Redo, even a 400/401/404, closes it. An auth breaker opens on a 401/403 with its
secret; only its own probe's success closes it; the default secret's is mirrored to
``Signals.auth_blocked`` for readiness.
"""

from __future__ import annotations

import logging
from functools import partial

from prometheus_client import Gauge

from consumer.delivery.breaker import Breaker, Turn
from consumer.delivery.retry import RetryPolicy
from consumer.ops import metrics
from consumer.redo.secrets import DEFAULT_SECRET
from consumer.signals import Signals

log = logging.getLogger(__name__)


class Gates:
    def __init__(self, policy: RetryPolicy, signals: Signals) -> None:
        self._policy = policy
        self._signals = signals
        self._consecutive_failures = 0
        self._auth: dict[str, Breaker] = {}
        self.circuit = Breaker(
            "circuit",
            probe_interval=policy.circuit_probe_interval,
            closed_by_any_success=True,
            on_change=self._circuit_changed,
        )
        self.auth(DEFAULT_SECRET)  # exported as 0 from the start, not only after a 401

    def auth(self, secret_name: str) -> Breaker:
        """The breaker of one secret (``SecretProvider.secret_name``): a secret Redo refuses
        holds only the calls made with it."""
        breaker = self._auth.get(secret_name)
        if breaker is None:
            gauge = metrics.REDO_AUTH_BLOCKED.labels(secret=secret_name)
            gauge.set(0)
            breaker = self._auth[secret_name] = Breaker(
                f"auth {secret_name}",
                probe_interval=lambda _n: self._policy.auth_retry_seconds,
                closed_by_any_success=False,
                on_change=partial(self._auth_changed, secret_name, gauge),
            )
        return breaker

    def answered(self, circuit_turn: Turn) -> None:
        """Redo answered (even with 400/401/404): it is up."""
        self._consecutive_failures = 0
        self.circuit.succeeded(circuit_turn)

    def retryable_failure(self, circuit_turn: Turn) -> None:
        self._consecutive_failures += 1
        if circuit_turn.is_probe or (
            self._consecutive_failures >= self._policy.circuit_failure_threshold
        ):
            self.circuit.failed(circuit_turn)

    def _circuit_changed(self, is_open: bool) -> None:
        metrics.CIRCUIT_OPEN.set(int(is_open))
        self._signals.circuit_open = is_open

    def _auth_changed(self, secret: str, gauge: Gauge, is_open: bool) -> None:
        gauge.set(int(is_open))
        if secret == DEFAULT_SECRET:
            self._signals.auth_blocked = is_open
        if is_open:
            log.error(
                "Redo refuses the %s API secret: its calls are held, one probe every %gs",
                secret,
                self._policy.auth_retry_seconds,
                extra={"secret": secret},
            )
        else:
            log.info("Redo accepts the %s API secret again", secret, extra={"secret": secret})

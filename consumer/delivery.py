"""Getting one Redo call to a final outcome: sent, dead-lettered, or abandoned on revoke.

The retry policy of DESIGN §7 lives here and nowhere else: exponential backoff with full jitter
(``Retry-After`` honoured) for 429/5xx/timeouts/connection errors, without limit; 404 retried for
a bounded window (the fulfillment may not exist yet) then dead-lettered; 400 dead-lettered at
once; 401/403 closes the auth gate (no calls until a probe, after re-reading the secret, gets
through). A run of retryable failures opens the circuit, which pauses consumption upstream.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from prometheus_client import Gauge

from consumer import metrics
from consumer.breaker import Gate
from consumer.errors import (
    ConfigError,
    RedoAuthError,
    RedoError,
    RedoNotFoundError,
    RedoRejectedError,
    RedoRetryableError,
)
from consumer.model import RedoCall
from consumer.rate_limit import RateLimiter
from consumer.redo.secrets import SecretProvider
from consumer.slots import Slots

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    SENT = "sent"
    DEAD_LETTERED = "dead_lettered"
    ABANDONED = "abandoned"


@dataclass(frozen=True)
class RetryPolicy:
    initial_seconds: float = 0.2
    max_seconds: float = 30.0
    not_found_window_seconds: float = 600.0
    auth_retry_seconds: float = 30.0
    circuit_failure_threshold: int = 5

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Full jitter: uniform in [0, min(max, initial * 2**attempt)], at least Retry-After."""
        ceiling = min(self.max_seconds, self.initial_seconds * 2.0 ** min(attempt, 30))
        delay = random.uniform(0, ceiling)
        return max(delay, retry_after) if retry_after is not None else delay

    def circuit_probe_interval(self, failed_probes: int) -> float:
        return min(self.max_seconds, self.initial_seconds * 2.0**failed_probes)


DeadLetter = Callable[[RedoCall, RedoError], Awaitable[bool]]
"""Writes a refused call's dead letter; False when it was given up (revoke): not done."""


class Sender(Protocol):
    """One request per call, raising the ``RedoError`` kind that classifies a failure."""

    async def send(self, call: RedoCall) -> object: ...


class Deliverer:
    """Sends calls with the retry policy; shared by every fulfillment's worker."""

    def __init__(
        self,
        client: Sender,
        secrets: SecretProvider,
        policy: RetryPolicy,
        *,
        max_in_flight: int,
        circuit_flag: threading.Event,
        rate_limit: float = 0.0,
    ) -> None:
        """``circuit_flag`` mirrors the circuit for the Kafka thread, which pauses consumption."""
        self._client = client
        self._secrets = secrets
        self._policy = policy
        self._slots = Slots(max_in_flight)
        self._rate = RateLimiter(rate_limit)
        self._consecutive_failures = 0
        self.auth_gate = Gate(
            "auth",
            probe_interval=lambda _n: policy.auth_retry_seconds,
            on_change=lambda closed: metrics.REDO_AUTH_BLOCKED.set(int(closed)),
        )
        self.circuit = Gate(
            "circuit",
            probe_interval=policy.circuit_probe_interval,
            on_change=lambda closed: _mirror(closed, circuit_flag, metrics.CIRCUIT_OPEN),
        )

    async def deliver(
        self,
        call: RedoCall,
        *,
        abandoned: Callable[[], bool],
        dead_letter: DeadLetter,
        follow_up: bool = False,
    ) -> Outcome:
        """Retry ``call`` until it is sent or dead-lettered, or ``abandoned()`` turns true.
        A ``follow_up`` (not the first call of its transition) goes ahead of waiting calls."""
        attempt = 0
        first_not_found: float | None = None
        while not abandoned():
            auth_probe = await self.auth_gate.wait_turn()
            if auth_probe:
                self._reload_secrets()
            circuit_probe = await self.circuit.wait_turn()
            try:
                sent = await self._send_once(call, follow_up, abandoned, auth_probe, circuit_probe)
            except RedoAuthError as exc:
                await self._failed(self.auth_gate, auth_probe)
                log.error("Redo refused the API secret; calls stopped", extra=_context(call, exc))
                await self._release_probe(self.circuit, circuit_probe)
                continue
            except RedoRejectedError as exc:
                await self._succeeded(auth_probe, circuit_probe)
                return await _dead_lettered(dead_letter, call, exc)
            except RedoNotFoundError as exc:
                await self._succeeded(auth_probe, circuit_probe)
                now = time.monotonic()
                first_not_found = first_not_found if first_not_found is not None else now
                if now - first_not_found >= self._policy.not_found_window_seconds:
                    return await _dead_lettered(dead_letter, call, exc)
                delay = self._policy.backoff(attempt)
                metrics.REDO_RETRIES.labels(reason="not_found").inc()
            except RedoRetryableError as exc:
                await self._release_probe(self.auth_gate, auth_probe)
                await self._retryable_failure(circuit_probe)
                delay = self._policy.backoff(attempt, exc.retry_after)
                metrics.REDO_RETRIES.labels(reason=_retry_reason(exc)).inc()
                log.warning("Redo call failed, retrying in %.2fs", delay, extra=_context(call, exc))
            else:
                if not sent:  # revoked, or a gate closed while it waited for a slot
                    await self._release_probe(self.auth_gate, auth_probe)
                    await self._release_probe(self.circuit, circuit_probe)
                    continue
                await self._succeeded(auth_probe, circuit_probe)
                return Outcome.SENT
            attempt += 1
            await sleep_unless(delay, abandoned)
        return Outcome.ABANDONED

    async def _send_once(
        self,
        call: RedoCall,
        follow_up: bool,
        abandoned: Callable[[], bool],
        auth_probe: bool,
        circuit_probe: bool,
    ) -> bool:
        """One request, holding a slot only while it is in flight (not during backoff).

        False, with nothing sent, when by the time a slot is free the call was abandoned or a
        gate it is not the probe of has closed: a call queued for a slot when Redo went down
        must not go out anyway."""
        await self._slots.acquire(urgent=follow_up)
        try:
            closed = (self.circuit.closed and not circuit_probe) or (
                self.auth_gate.closed and not auth_probe
            )
            if closed or abandoned():
                return False
            await self._rate.acquire()
            await self._client.send(call)
            return True
        finally:
            self._slots.release()

    def _reload_secrets(self) -> None:
        """Pick up a rotated secret; a file caught mid-rotation keeps the old one for now."""
        try:
            self._secrets.reload()
        except ConfigError as exc:
            log.error("cannot re-read the Redo secret, keeping the old one: %s", exc)

    async def _succeeded(self, auth_probe: bool, circuit_probe: bool) -> None:
        """Redo answered (even with 400/404): it is up and the secret is good."""
        self._consecutive_failures = 0
        if auth_probe or self.auth_gate.closed:
            await self.auth_gate.open()
        if circuit_probe or self.circuit.closed:
            await self.circuit.open()

    async def _retryable_failure(self, circuit_probe: bool) -> None:
        self._consecutive_failures += 1
        if circuit_probe:
            await self.circuit.probe_failed()
        elif self._consecutive_failures >= self._policy.circuit_failure_threshold:
            await self.circuit.close()

    @staticmethod
    async def _failed(gate: Gate, probe: bool) -> None:
        if probe:
            await gate.probe_failed()
        else:
            await gate.close()

    @staticmethod
    async def _release_probe(gate: Gate, probe: bool) -> None:
        """A probe that ended for an unrelated reason must not keep the gate stuck."""
        if probe:
            await gate.probe_failed()


async def _dead_lettered(dead_letter: DeadLetter, call: RedoCall, exc: RedoError) -> Outcome:
    return Outcome.DEAD_LETTERED if await dead_letter(call, exc) else Outcome.ABANDONED


def _mirror(closed: bool, flag: threading.Event, gauge: Gauge) -> None:
    gauge.set(int(closed))
    if closed:
        flag.set()
    else:
        flag.clear()


async def sleep_unless(delay: float, abandoned: Callable[[], bool]) -> None:
    """Sleep ``delay`` seconds, waking early (checked every 0.1 s) once ``abandoned()``."""
    deadline = time.monotonic() + delay
    while not abandoned():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        await asyncio.sleep(min(remaining, 0.1))


def _retry_reason(exc: RedoRetryableError) -> str:
    if exc.status_code == 429:
        return "rate_limited"
    if exc.status_code is not None:
        return "server_error"
    return "transport"


def _context(call: RedoCall, exc: RedoError) -> dict[str, object]:
    return {
        "fulfillment_id": call.fulfillment_id,
        "call_status": call.status,
        "http_status": exc.status_code,
        "error": str(exc),
    }

"""Getting one Redo call to a final outcome: sent, dead-lettered, or abandoned on revoke.

The retry policy of a call lives here and nowhere else (the delays: ``retry``; the breakers:
``gates``): exponential backoff with full jitter
(``Retry-After`` honoured) for 429/5xx/timeouts/connection errors, without limit; 404 retried for
a bounded window (the fulfillment may not exist yet) then dead-lettered; 400 dead-lettered at
once; 401/403 opens the auth breaker of the secret the call used (the calls of every store using
that secret wait; one probe every ``AUTH_RETRY_SECONDS`` re-reads the secret files and tries
again; only that probe's success closes it). A run of retryable failures opens the circuit, which
pauses consumption upstream.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from consumer.delivery.breaker import Breaker, Turn
from consumer.delivery.gates import Gates
from consumer.delivery.rate_limit import RateLimiter
from consumer.delivery.retry import RetryPolicy, sleep_unless
from consumer.delivery.slots import Slots
from consumer.errors import (
    ConfigError,
    RedoAuthError,
    RedoError,
    RedoNotFoundError,
    RedoRejectedError,
    RedoRetryableError,
)
from consumer.model import RedoCall
from consumer.ops import metrics
from consumer.outcome import Outcome
from consumer.redo.secrets import SecretProvider
from consumer.signals import Signals

log = logging.getLogger(__name__)


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
        signals: Signals,
        rate_limit: float = 0.0,
    ) -> None:
        """``signals`` carries the circuit and the default secret's auth state to the other
        threads (``Gates``)."""
        self._client = client
        self._secrets = secrets
        self._policy = policy
        self._slots = Slots(max_in_flight)
        self._rate = RateLimiter(rate_limit)
        self.gates = Gates(policy, signals)

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
            secret = self._secrets.secret_name(call.store_id)
            auth = self.gates.auth(secret)
            async with (
                auth.turn(abandoned) as auth_turn,
                self.gates.circuit.turn(abandoned) as circuit_turn,
            ):
                if auth_turn.abandoned or circuit_turn.abandoned:
                    break
                if auth_turn.is_probe:
                    self._reload_secrets()
                try:
                    sent = await self._send_once(
                        call, follow_up, abandoned, auth, auth_turn, circuit_turn
                    )
                except RedoAuthError as exc:
                    self.gates.answered(circuit_turn)  # Redo is up, it only refuses this secret
                    auth.failed(auth_turn)
                    log.error(
                        "Redo refused a call", extra={**_context(call, exc), "secret": secret}
                    )
                    continue
                except RedoRejectedError as exc:
                    self.gates.answered(circuit_turn)
                    auth.succeeded(auth_turn)
                    return await _dead_lettered(dead_letter, call, exc)
                except RedoNotFoundError as exc:
                    self.gates.answered(circuit_turn)
                    auth.succeeded(auth_turn)
                    now = time.monotonic()
                    first_not_found = first_not_found if first_not_found is not None else now
                    if now - first_not_found >= self._policy.not_found_window_seconds:
                        return await _dead_lettered(dead_letter, call, exc)
                    delay = self._policy.backoff(attempt)
                    metrics.REDO_RETRIES.labels(reason="not_found").inc()
                except RedoRetryableError as exc:
                    self.gates.retryable_failure(circuit_turn)
                    delay = self._policy.backoff(attempt, exc.retry_after)
                    metrics.REDO_RETRIES.labels(reason=_retry_reason(exc)).inc()
                    log.warning(
                        "Redo call failed, retrying in %.2fs", delay, extra=_context(call, exc)
                    )
                else:
                    if not sent:  # revoked, or a breaker opened while it waited for a slot
                        continue
                    self.gates.answered(circuit_turn)
                    auth.succeeded(auth_turn)
                    return Outcome.SENT
            attempt += 1
            await sleep_unless(delay, abandoned)
        return Outcome.ABANDONED

    async def _send_once(
        self,
        call: RedoCall,
        follow_up: bool,
        abandoned: Callable[[], bool],
        auth: Breaker,
        auth_turn: Turn,
        circuit_turn: Turn,
    ) -> bool:
        """One request, holding a slot only while it is in flight (not during backoff).

        False, with nothing sent, when by the time a slot is free the call was abandoned or a
        breaker it is not the probe of has opened: a call queued for a slot when Redo went down
        must not go out anyway."""
        await self._slots.acquire(urgent=follow_up)
        try:
            if self.gates.circuit.holds(circuit_turn) or auth.holds(auth_turn) or abandoned():
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


async def _dead_lettered(dead_letter: DeadLetter, call: RedoCall, exc: RedoError) -> Outcome:
    return Outcome.DEAD_LETTERED if await dead_letter(call, exc) else Outcome.ABANDONED


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

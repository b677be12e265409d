"""How long a Redo call or a Kafka write waits before it is tried again, and how it waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from consumer.backoff import Backoff


@dataclass(frozen=True)
class RetryPolicy:
    initial_seconds: float = 0.2
    max_seconds: float = 30.0
    not_found_window_seconds: float = 600.0
    auth_retry_seconds: float = 30.0
    circuit_failure_threshold: int = 5

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Full jitter: uniform in [0, min(max, initial * 2**attempt)], at least Retry-After."""
        return Backoff(self.initial_seconds, self.max_seconds).delay(attempt, at_least=retry_after)

    def circuit_probe_interval(self, failed_probes: int) -> float:
        return Backoff(self.initial_seconds, self.max_seconds, jitter=False).delay(failed_probes)


async def sleep_unless(delay: float, abandoned: Callable[[], bool]) -> None:
    """Sleep ``delay`` seconds, waking early (checked every 0.1 s) once ``abandoned()``."""
    deadline = time.monotonic() + delay
    while not abandoned():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        await asyncio.sleep(min(remaining, 0.1))

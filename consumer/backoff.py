"""The one backoff schedule every retry loop uses: exponential, capped, optionally jittered.

Redo calls, Kafka writes and schema fetches use full jitter (many shipments retrying against the
same dependency must not retry in step); the restore thread, the start-up topic checks and the
circuit's probe interval use the plain doubling, whose bounds the logs and docs promise (e.g. the
first start-up failure is logged within 10 s, later ones at most 33 s apart).
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    initial_seconds: float
    max_seconds: float
    jitter: bool = True

    def delay(self, attempt: int, *, at_least: float | None = None) -> float:
        """Seconds to wait before retry ``attempt`` (0 = the first retry): ``initial * 2**attempt``
        capped at ``max``; with jitter uniform in [0, that]; never below ``at_least`` (a
        server's Retry-After)."""
        ceiling = min(self.max_seconds, self.initial_seconds * 2.0 ** min(attempt, 30))
        delay = random.uniform(0, ceiling) if self.jitter else ceiling
        return delay if at_least is None else max(delay, at_least)

"""What one contender run measured, and how a recorded call's latency is computed."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bench.calls import call_key
from bench.procstat import CpuShares


@dataclass(frozen=True)
class Latency:
    """Event-to-call latency over the paced phase: produce (or send) time → sandbox answer."""

    samples: int
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class Measurement:
    contender: str
    latency_ms: int
    processes: int
    events: int
    calls: int
    errors: int
    missing: int
    startup_s: float
    busy_s: float
    latency: Latency | None
    rss_mb: float
    cpu_ms_per_event: float
    cpu: CpuShares

    @property
    def events_per_s(self) -> float:
        return self.events / self.busy_s

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.busy_s


def call_latencies(
    calls: Sequence[Mapping[str, Any]], sent_at: Mapping[tuple[str, str], float]
) -> Latency | None:
    """Latency of each answered call whose scan is in ``sent_at`` (key → ``time.time()``).

    The sandbox stamps ``received_at`` (millisecond precision) after its injected delay, so at
    50 ms the figure includes those 50 ms: it is the time until Redo has answered.
    """
    values = []
    for call in calls:
        body = call["body"]
        if call["status_code"] != 200 or not isinstance(body, dict):
            continue
        sent = sent_at.get(call_key(call["fulfillment_id"], body))
        if sent is not None:
            received = datetime.fromisoformat(call["received_at"]).timestamp()
            values.append(max(0.0, received - sent) * 1000)
    if not values:
        return None
    if len(values) == 1:
        return Latency(1, values[0], values[0])
    centiles = statistics.quantiles(values, n=100, method="inclusive")
    return Latency(len(values), centiles[49], centiles[98])

"""The contenders: how each is started, and how big a backlog each gets.

(a) to (d) are the issue's; (c') is a reference row, the ceiling loop on aiohttp instead of
httpx, which shows how much of a call's cost is the HTTP client's.

(a) and (b) send one call at a time, so at 50 ms they would need 100,000 x 50 ms = 83 minutes
for the full backlog; (c) spends 5 to 10 ms of CPU per httpx request on this machine, 8 to 16
minutes. They run on the first N events instead, N sized to take about ``SAMPLE_BUDGET_S``; the
table marks those rows as samples. Their rate does not depend on the backlog's size (one record
or request after another, no state), so the sample measures the same rate.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

NAIVE = "naive"
QUIX = "quix"
HTTPX = "httpx"
AIOHTTP = "aiohttp"
TRACKING = "tracking"
ALL = (NAIVE, QUIX, HTTPX, AIOHTTP, TRACKING)
CEILINGS = frozenset({HTTPX, AIOHTTP})

LABELS = {
    NAIVE: "(a) naive loop",
    QUIX: "(b) Quix Streams",
    HTTPX: "(c) bare httpx",
    AIOHTTP: "(c') bare aiohttp",
    TRACKING: "(d) tracking-consumer",
}
SEQUENTIAL = frozenset({NAIVE, QUIX})
MAX_IN_FLIGHT = 64
SAMPLE_BUDGET_S = 45.0
# Per-event cost besides the sandbox's injected latency, measured on this machine; only used to
# size the samples. Sequential contenders: round trip, decode, commit. httpx: its CPU per request
# (the ceiling loop is CPU-bound, so the injected latency overlaps).
_SEQUENTIAL_OVERHEAD_S = 0.015
_HTTPX_CPU_PER_REQUEST_S = 0.010
_MIN_SAMPLE = 200


def sample_size(contender: str, events: int, latency_ms: int, budget_s: float) -> int:
    """How many of the backlog's events ``contender`` gets at this latency."""
    if contender in SEQUENTIAL:
        per_event = latency_ms / 1000 + _SEQUENTIAL_OVERHEAD_S
    elif contender == HTTPX:
        per_event = _HTTPX_CPU_PER_REQUEST_S
    else:
        return events
    return min(events, max(_MIN_SAMPLE, int(budget_s / per_event)))


@dataclass(frozen=True)
class Endpoint:
    """What every contender needs to reach Kafka and the sandbox."""

    bootstrap: str
    url: str
    secret_file: Path


def kafka_command(
    contender: str, endpoint: Endpoint, topic: str, group: str
) -> tuple[list[str], dict[str, str]]:
    """Command line and extra environment of a contender that consumes ``topic``."""
    if contender == TRACKING:
        return [sys.executable, "-m", "consumer", "run"], {
            "KAFKA_BOOTSTRAP_SERVERS": endpoint.bootstrap,
            "KAFKA_TOPIC": topic,
            "KAFKA_GROUP_ID": group,
            "REDO_API_URL": endpoint.url,
            "REDO_API_SECRET_FILE": str(endpoint.secret_file),
            "MAX_IN_FLIGHT": str(MAX_IN_FLIGHT),
            "MAX_SCAN_AGE": "0",  # the generated scans are days old; send them anyway
            "LOG_LEVEL": "WARNING",
            "METRICS_PORT": "0",
        }
    module = {NAIVE: "bench.naive", QUIX: "bench.quix_app"}[contender]
    return [
        sys.executable,
        "-m",
        module,
        "--bootstrap",
        endpoint.bootstrap,
        "--topic",
        topic,
        "--group",
        group,
        "--url",
        endpoint.url,
        "--secret-file",
        str(endpoint.secret_file),
    ], {}


def ceiling_command(client: str, endpoint: Endpoint, requests_file: Path) -> list[str]:
    """The HTTP ceiling with ``client`` (HTTPX or AIOHTTP) sending the calls."""
    return [
        sys.executable,
        "-m",
        "bench.http_ceiling",
        "--url",
        endpoint.url,
        "--secret-file",
        str(endpoint.secret_file),
        "--requests",
        str(requests_file),
        "--concurrency",
        str(MAX_IN_FLIGHT),
        "--client",
        client,
    ]

"""One contender run: a pre-loaded backlog timed until done, then a paced phase for latency.

Backlog phase (throughput): the events are produced to a fresh 6-partition topic *before* the
contender starts; the clock runs from its first call reaching the sandbox until every offset is
committed (for the HTTP ceiling, from its first send until every call is answered). Start-up
(interpreter, imports, group join) is reported apart.

Paced phase (latency): in a backlog every event waits behind the ones before it, so latency
there only restates throughput. Instead, once the backlog is done, fresh events are produced
evenly spaced at ``LOAD`` x the contender's own measured rate for ``live_seconds``, each with its
produce time as its Kafka timestamp; an event's latency is that time → the sandbox's answer.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import contenders
from bench.calls import Request, call_key, redo_request, scan_key
from bench.kafka import CommitWatch, Record, produce_paced
from bench.measurement import Latency, Measurement, call_latencies
from bench.processes import Process, ProcessFailed, Sandbox
from bench.procstat import CpuMeter, CpuSnapshot, cpu_seconds
from consumer.model import TrackingEvent
from devkit.broker import create_topic
from devkit.encoding import encode_raw
from devkit.generator import tracking_stream
from devkit.kafka_tools import produce

PARTITIONS = 6
LOAD = 0.5
MIN_LIVE_EVENTS = 20
POLL_S = 0.1
STALL_TIMEOUT_S = 90.0
PROGRESS_EVERY_S = 15.0
# devkit.generator starts a shipment up to 10 h after ``start`` and spaces its scans up to 20 h.
_MAX_START_OFFSET_H = 10
_MAX_SCAN_GAP_H = 20


@dataclass(frozen=True)
class Workload:
    """Events, encoded once as Kafka records; a contender gets all of them or a prefix."""

    events: list[TrackingEvent]
    records: list[Record]

    @classmethod
    def generate(cls, events: int, fulfillments: int, prefix: str = "ful") -> Workload:
        """``events`` scans over ``fulfillments`` shipments, every scan in the past (the last
        at most an hour ago). Past, because a scan time ahead of the wall clock would move
        tracking-consumer's partition clock into the future and fire stall and delay rules for
        every shipment, which a real stream does not do."""
        scans = max(1, math.ceil(events / fulfillments))
        span = timedelta(hours=_MAX_START_OFFSET_H + _MAX_SCAN_GAP_H * (scans - 1) + 1)
        start = datetime.now(UTC).replace(microsecond=0) - span
        stream = tracking_stream(fulfillments, scans, start=start, prefix=prefix)[:events]
        return cls(stream, [(e.fulfillment_id.encode(), encode_raw(e)) for e in stream])

    def head(self, count: int) -> Workload:
        return Workload(self.events[:count], self.records[:count])

    def requests(self) -> list[Request]:
        return [r for r in map(redo_request, self.events) if r is not None]


@dataclass(frozen=True)
class Tally:
    """Calls answered 200, calls answered otherwise, and scans whose status call never came."""

    ok: int
    errors: int
    missing: int


@dataclass
class Bench:
    """What every run shares: the endpoints, the sandbox, the CPU meter, the naming."""

    endpoint: contenders.Endpoint
    sandbox: Sandbox
    meter: CpuMeter
    prefix: str
    live_seconds: float
    runs: int = 0

    def new_name(self, contender: str, latency_ms: int) -> str:
        self.runs += 1
        return f"{self.prefix}-{self.runs}-{contender}-{latency_ms}ms"

    def answered(self) -> tuple[int, int]:
        """Calls answered 200, and calls answered otherwise or dropped, since the last reset."""
        stats = self.sandbox.control.stats()
        ok = stats.get("200", 0)
        return ok, sum(stats.values()) - ok

    def tally(self, workload: Workload) -> Tally:
        """What the sandbox received for ``workload`` since the last reset. A benchmark that
        counted a contender fast while it skipped calls would be wrong, so every scan's status
        call is looked for (read after the clock stopped, so it costs the measurement nothing)."""
        ok, errors = self.answered()
        received = {
            call_key(call["fulfillment_id"], call["body"])
            for call in self.sandbox.control.calls(status_code=200)
            if isinstance(call["body"], dict)
        }
        expected = {scan_key(e) for e in workload.events if redo_request(e) is not None}
        return Tally(ok, errors, len(expected - received))

    def reset_sandbox(self, latency_ms: int | None = None) -> None:
        self.sandbox.control.reset()
        if latency_ms is not None:
            self.sandbox.control.set_faults(latency_ms=latency_ms)


@dataclass(frozen=True)
class _Backlog:
    """The backlog phase's timings and CPU snapshots, before the paced phase runs."""

    events: int
    spawned: float
    first: float
    done: float
    before: CpuSnapshot
    after: CpuSnapshot
    contender_cpu_at_first: float
    tally: Tally

    @property
    def rate(self) -> float:
        """Events per second."""
        return self.events / (self.done - self.first)


def run_kafka_contender(
    bench: Bench, contender: str, latency_ms: int, workload: Workload, *, processes: int = 1
) -> Measurement:
    """Time ``processes`` instances of a Kafka contender (one group) over ``workload``."""
    name = bench.new_name(contender, latency_ms)
    group = f"{name}-group"
    bootstrap = bench.endpoint.bootstrap
    create_topic(bootstrap, name, PARTITIONS)
    produce(bootstrap, name, workload.records)
    bench.reset_sandbox(latency_ms)
    command, env = contenders.kafka_command(contender, bench.endpoint, name, group)
    what = f"{contenders.LABELS[contender]} @{latency_ms} ms"
    before = bench.meter.snapshot([])
    spawned = time.time()
    procs = [Process(f"{contender}-{i}", command, env) for i in range(processes)]
    try:
        with closing(CommitWatch(bootstrap, group, name)) as watch:
            first, done, cpu_at_first = _await(bench, procs, watch.caught_up, what, min_calls=1)
            backlog = _Backlog(
                len(workload.events),
                spawned,
                first,
                done,
                before,
                bench.meter.snapshot([p.pid for p in procs]),
                cpu_at_first,
                bench.tally(workload),
            )
            live = _live_workload(backlog.rate, bench.live_seconds)
            bench.reset_sandbox()
            sent = produce_paced(bootstrap, name, live.records, LOAD * backlog.rate)
            watch.refresh_ends()
            _await(bench, procs, watch.caught_up, f"{what}, paced", min_calls=len(live.requests()))
        latency = _latency(bench, live, sent)
        rss = max(p.peak_rss_mb() for p in procs)
    finally:
        _stop_all(procs)
    return _measurement(contender, latency_ms, processes, backlog, latency, rss)


def run_http_ceiling(bench: Bench, client: str, latency_ms: int, workload: Workload) -> Measurement:
    """Time the bare HTTP loop (``client``: HTTPX or AIOHTTP) over the workload's calls."""
    bench.reset_sandbox(latency_ms)
    with tempfile.NamedTemporaryFile("w", prefix="bench-requests-", suffix=".jsonl") as file:
        file.writelines(json.dumps(request) + "\n" for request in workload.requests())
        file.flush()
        before = bench.meter.snapshot([])
        spawned = time.time()
        command = contenders.ceiling_command(client, bench.endpoint, Path(file.name))
        proc = Process(client, command, piped=True)
        try:
            timeout = STALL_TIMEOUT_S + len(workload.events) / 50
            report = json.loads(proc.read_line("BACKLOG", timeout))
            backlog = _Backlog(
                len(workload.events),
                spawned,
                float(report["first"]),
                float(report["done"]),
                before,
                bench.meter.snapshot([proc.pid]),
                float(report["cpu_first"]),
                bench.tally(workload),
            )
            live = _live_workload(backlog.rate, bench.live_seconds)
            live_requests = live.requests()
            bench.reset_sandbox()
            proc.stdin.write(f"LIVE {LOAD * backlog.rate} {len(live_requests)}\n")
            proc.stdin.writelines(json.dumps(request) + "\n" for request in live_requests)
            proc.stdin.flush()
            paced = json.loads(proc.read_line("LIVE", STALL_TIMEOUT_S + 2 * bench.live_seconds))
            latency = _latency(bench, live, paced["sent"])
            rss = proc.peak_rss_mb()
        finally:
            _stop_all([proc])
    return _measurement(client, latency_ms, 1, backlog, latency, rss)


def _live_workload(rate: float, seconds: float) -> Workload:
    """Fresh shipments for the paced phase, one recent scan each: ``LOAD x rate`` per second
    for ``seconds``."""
    count = max(MIN_LIVE_EVENTS, round(LOAD * rate * seconds))
    return Workload.generate(count, count, prefix="live")


def _latency(bench: Bench, live: Workload, sent: Sequence[float]) -> Latency | None:
    """Match the sandbox's record against the send time of each scan (all live scans call)."""
    sent_at = dict(zip(map(scan_key, live.events), sent, strict=True))
    return call_latencies(bench.sandbox.control.calls(), sent_at)


def _measurement(
    contender: str,
    latency_ms: int,
    processes: int,
    backlog: _Backlog,
    latency: Latency | None,
    rss_mb: float,
) -> Measurement:
    return Measurement(
        contender=contender,
        latency_ms=latency_ms,
        processes=processes,
        events=backlog.events,
        calls=backlog.tally.ok,
        errors=backlog.tally.errors,
        missing=backlog.tally.missing,
        startup_s=backlog.first - backlog.spawned,
        busy_s=backlog.done - backlog.first,
        latency=latency,
        rss_mb=rss_mb,
        cpu_ms_per_event=1000
        * (backlog.after.contender - backlog.contender_cpu_at_first)
        / backlog.events,
        cpu=CpuMeter.shares(backlog.before, backlog.after, backlog.done - backlog.spawned),
    )


def _await(
    bench: Bench,
    procs: list[Process],
    finished: Callable[[], bool],
    what: str,
    *,
    min_calls: int,
) -> tuple[float, float, float]:
    """Wait until ``min_calls`` calls were answered and ``finished()``. Returns the time of the
    first answered call, the time it finished, and the processes' CPU seconds at the first call.
    Fails when no call is answered for STALL_TIMEOUT_S, or when a process exits."""
    first: float | None = None
    cpu_at_first = 0.0
    seen, last_change = 0, time.monotonic()
    last_report = last_change
    while True:
        for proc in procs:
            proc.check_alive()
        now = time.time()
        ok, errors = bench.answered()
        if first is None and ok:
            first = now
            cpu_at_first = sum(cpu_seconds(p.pid) for p in procs)
        if ok + errors != seen:
            seen, last_change = ok + errors, time.monotonic()
        elif time.monotonic() - last_change > STALL_TIMEOUT_S:
            tails = "\n".join(f"--- {p.name} ---\n{p.tail()}" for p in procs)
            raise ProcessFailed(f"{what}: no call answered for {STALL_TIMEOUT_S:.0f}s\n{tails}")
        if first is not None and ok >= min_calls and finished():
            return first, now, cpu_at_first
        if time.monotonic() - last_report > PROGRESS_EVERY_S:
            last_report = time.monotonic()
            print(f"    {what}: {ok} calls answered, {errors} not 200", file=sys.stderr)
        time.sleep(POLL_S)


def _stop_all(procs: list[Process]) -> None:
    for proc in procs:
        proc.stop()
    for proc in procs:
        proc.remove_log()

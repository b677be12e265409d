"""``python -m bench`` (``make bench BENCH_ARGS=...``): run the contenders side by side and print
the tables. ``--quick`` is a smoke run (10,000 events); ``--scale`` compares 1 and 2
tracking-consumer processes instead; ``--contenders`` reruns a subset; ``--state-scale`` runs
``bench.state_bench`` (per-shipment state at scale) instead.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from bench import contenders, report, state_bench
from bench.harness import Bench, Workload, run_http_ceiling, run_kafka_contender
from bench.kafka import remove_run_leftovers, unique_prefix
from bench.measurement import Measurement
from bench.processes import Sandbox
from bench.procstat import CpuMeter, pids_with_argument
from devkit.broker import LocalKafka

TOKEN = "bench-token-0123456789"
QUICK_EVENTS = 10_000
QUICK_FULFILLMENTS = 1_000


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--events", type=int, help="backlog size (default 100,000)")
    parser.add_argument("--fulfillments", type=int, help="distinct fulfillments (10,000)")
    parser.add_argument("--latencies", default="0,50", help="sandbox latencies in ms")
    parser.add_argument("--scale", action="store_true", help="1 vs 2 tracking-consumer processes")
    parser.add_argument("--quick", action="store_true", help="smoke run: 10,000 events")
    parser.add_argument(
        "--state-scale",
        action="store_true",
        help="per-shipment state at 10,000 / 100,000 / 1,000,000 tracked shipments instead",
    )
    parser.add_argument(
        "--validating-sandbox",
        action="store_true",
        help="Redo is the full devkit sandbox (validates every request) instead of the stand-in",
    )
    parser.add_argument(
        "--contenders",
        default=",".join(contenders.ALL),
        help=f"subset to run, from {','.join(contenders.ALL)}",
    )
    args = parser.parse_args(argv)
    args.events = args.events or (QUICK_EVENTS if args.quick else 100_000)
    args.fulfillments = args.fulfillments or (QUICK_FULFILLMENTS if args.quick else 10_000)
    args.latencies = [int(v) for v in args.latencies.split(",")]
    args.contenders = [c for c in contenders.ALL if c in args.contenders.split(",")]
    return args


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def _broker() -> Iterator[tuple[str, list[int]]]:
    """Bootstrap address and broker PIDs (for CPU accounting): ``$KAFKA_BOOTSTRAP_SERVERS``
    (PIDs unknown) or a LocalKafka of our own (found by its work dir)."""
    existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if existing:
        yield existing, []
        return
    with LocalKafka() as kafka:
        yield kafka.bootstrap_servers, pids_with_argument(str(kafka.log_path.parent))


def _machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores ({model}), "
        f"Linux {platform.release()}, Python {platform.python_version()}, load average {load}"
    )


def _code_version() -> str:
    """The commit the consumer was measured at, and whether consumer/ had uncommitted edits."""
    repo = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "consumer")
    return f"commit {commit}" + (" + uncommitted changes in consumer/" if dirty else "")


def _run_all(bench: Bench, args: argparse.Namespace, workload: Workload) -> list[Measurement]:
    measured: list[Measurement] = []
    plan: list[tuple[str, int, int]] = (
        [(contenders.TRACKING, latency, n) for latency in args.latencies for n in (1, 2)]
        if args.scale
        else [(c, latency, 1) for latency in args.latencies for c in args.contenders]
    )
    budget = contenders.SAMPLE_BUDGET_S / (3 if args.quick else 1)
    for contender, latency, processes in plan:
        size = contenders.sample_size(contender, args.events, latency, budget)
        label = f"{contenders.LABELS[contender]} x{processes} @{latency} ms, {size:,} events"
        print(f"  running {label}", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            if contender in contenders.CEILINGS:
                row = run_http_ceiling(bench, contender, latency, workload.head(size))
            else:
                row = run_kafka_contender(
                    bench, contender, latency, workload.head(size), processes=processes
                )
        except Exception as exc:
            print(f"  FAILED {label}: {exc}", file=sys.stderr, flush=True)
            continue
        finally:
            remove_run_leftovers(bench.endpoint.bootstrap, f"{bench.prefix}-{bench.runs}-")
        print(
            f"    {row.events_per_s:,.0f} events/s ({time.monotonic() - started:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
        measured.append(row)
    return measured


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.state_scale:
        print(f"machine: {_machine()}", flush=True)
        print(f"code: {_code_version()}", flush=True)
        status = state_bench.main([])
        print(f"\nmachine at the end: {_machine()}")
        return status
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    print(f"machine: {_machine()}", flush=True)
    print(f"code: {_code_version()}", flush=True)
    redo = "devkit.sandbox (validating)" if args.validating_sandbox else "bench.redo_standin"
    print(f"Redo: {redo}", flush=True)
    workload = Workload.generate(args.events, args.fulfillments)
    with ExitStack() as stack:
        bootstrap, broker_pids = stack.enter_context(_broker())
        secret = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "redo-secret"
        secret.write_text(TOKEN)
        sandbox = Sandbox(TOKEN, validating=args.validating_sandbox)
        stack.callback(sandbox.stop)
        bench = Bench(
            contenders.Endpoint(bootstrap, sandbox.url, secret),
            sandbox,
            CpuMeter(sandbox.pid, broker_pids),
            unique_prefix(),
            live_seconds=4.0 if args.quick else 10.0,
        )
        stack.callback(remove_run_leftovers, bootstrap, bench.prefix)
        rows = _run_all(bench, args, workload)
    if args.scale:
        print(report.scale_table(rows))
    else:
        print(report.contenders_table(rows, args.events))
        print()
        print(report.targets(rows))
    print(f"\nmachine at the end: {_machine()}")
    print(f"total duration: {(time.monotonic() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; every process and topic started was cleaned up", file=sys.stderr)
        sys.exit(130)

"""``make bench BENCH_ARGS=--state-scale`` (``python -m bench.state_bench``): what
per-shipment state costs at 10,000, 100,000 and 1,000,000 tracked shipments per partition.

For each size, writes that many realistic states to a one-partition changelog as
``Changelog.write`` does, then, in a fresh process (so its peak RSS is its own):

0. runs the events below on an empty partition (the same process, the baseline);
1. restores the partition (``Changelog.restore``) and builds its store (``Processor.attach``),
   the work a newly assigned partition waits for: seconds and states/s;
2. memory per shipment: the Python objects the store retains (tracemalloc, a second restore)
   and the process's RSS growth (which also holds what librdkafka and the allocator keep);
3. runs ``--events`` scans over ``--fulfillments`` other shipments through the real
   ``Processor`` (decode, rules, state, ordering, offsets, changelog encoding),
   with Redo and Kafka writes answered at once: µs of process CPU per event, the part of the
   consumer's CPU that could depend on how many shipments it tracks;
4. peak RSS (``VmHWM``).

Starts its own broker (``devkit.broker.kafka_cluster``: ``KAFKA_BOOTSTRAP_SERVERS`` when set).
Prints measured numbers and whether each target is met; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from bench.harness import Workload
from consumer.delivery.retry import RetryPolicy
from consumer.kafka.config import consumer_config
from consumer.kafka.dead_letters import DeadLetters
from consumer.kafka.offsets import PartitionWork
from consumer.kafka.producer import AsyncProducer
from consumer.kafka.records import RawRecord
from consumer.model import RedoCall, ShipmentStatus
from consumer.ops.runtime import event_loop, tune_gc
from consumer.outcome import Outcome
from consumer.processing.processor import Processor
from consumer.processing.settings import ProcessingSettings
from consumer.rules import RulesConfig, ShipmentState
from consumer.serde.events import RawDecoder
from consumer.state.changelog import OFFSET_HEADER, Changelog
from consumer.state.packed import RestoredStates
from consumer.state.store import PartitionStore
from devkit.broker import kafka_cluster

SIZES = (10_000, 100_000, 1_000_000)
BUFFERED = 2_000
"""Records handed to the pipeline ahead of those done, like the consumer's per-partition cap."""
RULES = RulesConfig()

BYTES_TARGET = 400
RESTORE_TARGET = 150_000
FLAT_TARGET = 0.10


@dataclass(frozen=True)
class Result:
    shipments: int
    restore_s: float
    restore_cpu_s: float
    attach_s: float
    rss_growth: int
    traced_bytes: int
    events: int
    empty_us: float
    """µs of CPU per event on an empty partition, measured in the same process just before."""
    tracked_us: float
    peak_rss: int
    load: str

    @property
    def restore_per_s(self) -> float:
        return self.shipments / (self.restore_s + self.attach_s)

    @property
    def restore_per_cpu_s(self) -> float:
        return self.shipments / self.restore_cpu_s

    @property
    def bytes_per_shipment(self) -> float:
        return self.traced_bytes / self.shipments


def states(count: int, start: datetime, seed: int = 1) -> Iterator[ShipmentState]:
    """Plausible mid-journey states like the generator's (eventIds derived from the
    fulfillment ID), a carrier, an ETA, eight remembered eventIds, a tenth delivered; their
    last scans after ``start``, so none of their timers falls within the measured events."""
    rng = random.Random(seed)
    for number in range(count):
        fulfillment_id = f"idle-{number:08d}"
        last = start + timedelta(seconds=rng.randrange(30 * 86400))
        delivered = rng.random() < 0.1
        eta = last.date() + timedelta(days=rng.randint(0, 4))
        status = ShipmentStatus.DELIVERED if delivered else ShipmentStatus.IN_TRANSIT
        yield ShipmentState(
            fulfillment_id=fulfillment_id,
            store_id=f"store-{rng.randrange(100)}",
            order_id=f"order-{uuid.UUID(int=rng.getrandbits(128))}",
            last_scan_at=last,
            carrier=rng.choice(("UPS", "USPS", "FEDEX", "DHL")),
            last_status=status,
            last_status_sent=status,
            current_eta=eta,
            reference_eta=eta - timedelta(days=rng.randint(0, 1)),
            notified_delayed=(eta,) if rng.random() < 0.1 else (),
            notified_early=(),
            stall_notified=False,
            terminal_at=last if delivered else None,
            recent_event_ids=tuple(f"{fulfillment_id}-scan-{i}" for i in range(8)),
        )


def write_all(bootstrap: str, changelog: Changelog, count: int, start: datetime) -> None:
    """Write every state to partition 0 as ``Changelog.write`` would (its value and offset
    header), through a plain producer: awaiting each ack wrote only 3,000 to 6,000 states/s."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for offset, state in enumerate(states(count, start)):
        while True:
            try:
                producer.produce(
                    changelog.topic,
                    changelog.encode(state),
                    state.fulfillment_id.encode(),
                    partition=0,
                    headers=[(OFFSET_HEADER, str(offset).encode())],
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(120):
        raise RuntimeError("changelog writes not acknowledged")


class _Acked:
    """Kafka writes acknowledged at once: the measured CPU is the consumer's, not librdkafka's."""

    async def produce(self, topic: str, value: bytes | None, **_: Any) -> None:
        return None


class _Answered:
    """Redo answering every call at once."""

    async def deliver(self, call: RedoCall, **_: Any) -> Outcome:
        return Outcome.SENT


def rss_bytes(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


async def _measure(args: argparse.Namespace) -> Result:
    producer = cast(AsyncProducer, _Acked())
    config = consumer_config({"bootstrap.servers": args.bootstrap}, "state-bench")
    changelog = Changelog(args.topic, producer, config, rules=RULES)
    pipeline = Processor(
        RawDecoder(),
        cast(Any, _Answered()),
        DeadLetters(producer, "unused"),
        changelog,
        RetryPolicy(),
        ProcessingSettings(RULES, "changes", timedelta(0), timedelta(minutes=5), BUFFERED),
    )
    await _events(pipeline, RestoredStates(), Workload.generate(2_000, 200, "warm"))
    empty = await _events(
        pipeline, RestoredStates(), Workload.generate(args.events, args.fulfillments, "base")
    )
    workload = Workload.generate(args.events, args.fulfillments, "ful")
    gc.collect()
    rss_before = rss_bytes()
    started, cpu = time.perf_counter(), time.process_time()
    restored = await asyncio.to_thread(changelog.restore, 0)
    restore_s, restore_cpu = time.perf_counter() - started, time.process_time() - cpu
    if len(restored.records) != args.shipments:
        raise RuntimeError(f"restored {len(restored.records):,} of {args.shipments:,}")
    work = PartitionWork("bench", 0)
    started = time.perf_counter()
    pipeline.attach(work, restored)
    attach_s = time.perf_counter() - started
    del restored
    gc.collect()
    rss_growth = rss_bytes() - rss_before
    tracked = await _events(pipeline, work, workload)
    peak = rss_bytes("VmHWM")
    pipeline.detach([work])
    traced = _traced_restore(changelog)
    await pipeline.close()
    return Result(
        args.shipments,
        restore_s,
        restore_cpu,
        attach_s,
        rss_growth,
        traced,
        len(workload.records),
        empty,
        tracked,
        peak,
        _load(),
    )


async def _events(
    pipeline: Processor, target: PartitionWork | RestoredStates, workload: Workload
) -> float:
    """µs of process CPU per event to run ``workload`` through the pipeline, on ``target`` (an
    attached partition, or one attached now from ``RestoredStates``)."""
    if isinstance(target, RestoredStates):
        work = PartitionWork("bench", 1)
        pipeline.attach(work, target)
    else:
        work = target
    cpu = time.process_time()
    for offset, (key, value) in enumerate(workload.records):
        work.register(offset)
        pipeline.accept([RawRecord("bench", work.partition, offset, key, value, (), work)])
        await _drained_to(work, BUFFERED)
    await _drained_to(work, 0)
    spent = time.process_time() - cpu
    if isinstance(target, RestoredStates):
        pipeline.detach([work])
    return spent / len(workload.records) * 1e6


async def _drained_to(work: PartitionWork, buffered: int) -> None:
    while work.buffered > buffered:  # noqa: ASYNC110 - no event to wait on: jobs run meanwhile
        await asyncio.sleep(0)


def _traced_restore(changelog: Changelog) -> int:
    """Bytes of Python objects a restored store retains (tracemalloc), the store built as
    ``Processor.attach`` builds it."""
    gc.collect()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        store = PartitionStore(RULES, changelog.restore(0))
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    del store
    return traced


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _measure_in_child(bootstrap: str, shipments: int, events: int, fulfillments: int) -> Result:
    topic = f"state-bench-{uuid.uuid4().hex[:8]}.state"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(topic, num_partitions=1, config={"cleanup.policy": "compact"})
    for future in admin.create_topics([new]).values():
        future.result()
    try:
        changelog = Changelog(topic, cast(AsyncProducer, _Acked()), {}, rules=RULES)
        write_all(bootstrap, changelog, shipments, datetime.now(UTC))
        command = [
            sys.executable,
            "-m",
            "bench.state_bench",
            "--measure",
            f"--bootstrap={bootstrap}",
            f"--topic={topic}",
            f"--shipments={shipments}",
            f"--events={events}",
            f"--fulfillments={fulfillments}",
        ]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    finally:
        admin.delete_topics([topic])
    return Result(**json.loads(output.strip().splitlines()[-1]))


def table(results: Sequence[Result]) -> str:
    header = (
        "| tracked shipments | memory per shipment: Python objects (tracemalloc) / RSS growth | "
        "restore + attach s | restore states/s (restore CPU s) | µs CPU per event: empty / "
        "tracked | tracked ÷ empty | vs first row | peak RSS MiB | load average |"
    )
    lines = [header, "| " + " | ".join("---" for _ in range(header.count("|") - 1)) + " |"]
    base = results[0].tracked_us
    for r in results:
        lines.append(
            f"| {r.shipments:,} | {r.bytes_per_shipment:,.0f} B / "
            f"{r.rss_growth / r.shipments:,.0f} B | {r.restore_s + r.attach_s:.2f} "
            f"({r.attach_s:.2f} attach) | {r.restore_per_s:,.0f} ({r.restore_cpu_s:.2f}) | "
            f"{r.empty_us:.0f} / {r.tracked_us:.0f} | {r.tracked_us / r.empty_us:.2f} | "
            f"{r.tracked_us / base - 1:+.1%} | {r.peak_rss / 2**20:,.0f} | {r.load} |"
        )
    return "\n".join(lines)


def targets(results: Sequence[Result]) -> str:
    largest = results[-1]
    drift = largest.tracked_us / results[0].tracked_us - 1
    beside = largest.tracked_us / largest.empty_us - 1
    checks = [
        (
            f"memory at {largest.shipments:,}: {largest.bytes_per_shipment:,.0f} B per shipment "
            f"(target ≤ {BYTES_TARGET} B)",
            largest.bytes_per_shipment <= BYTES_TARGET,
        ),
        (
            f"restore at {largest.shipments:,}: {largest.restore_per_s:,.0f} states/s of wall "
            f"clock (target ≥ {RESTORE_TARGET:,})",
            largest.restore_per_s >= RESTORE_TARGET,
        ),
        (
            f"restore at {largest.shipments:,} per CPU second of the process: "
            f"{largest.restore_per_cpu_s:,.0f} states/s (the same target, without the waits "
            f"for a core of a shared machine)",
            largest.restore_per_cpu_s >= RESTORE_TARGET,
        ),
        (
            f"CPU per event with {largest.shipments:,} tracked: {beside:+.1%} vs an empty "
            f"partition in the same process (target within ±{FLAT_TARGET:.0%}); "
            f"{drift:+.1%} vs the {results[0].shipments:,} row, a different process at a "
            f"different machine load",
            abs(beside) <= FLAT_TARGET,
        ),
    ]
    return "\n".join(f"- {text}: {'met' if ok else '**NOT met**'}" for text, ok in checks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.state_bench", description=__doc__)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--fulfillments", type=int, default=10_000)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    parser.add_argument("--shipments", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        tune_gc()
        with asyncio.Runner(loop_factory=event_loop) as runner:
            print(json.dumps(asdict(runner.run(_measure(args)))))
        return 0
    results = []
    with kafka_cluster() as bootstrap:
        for size in map(int, args.sizes.split(",")):
            print(f"  {size:,} shipments ...", file=sys.stderr, flush=True)
            results.append(_measure_in_child(bootstrap, size, args.events, args.fulfillments))
    print(f"\nPer-shipment state at scale ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")
    print(table(results))
    print()
    print(targets(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

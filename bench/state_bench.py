"""``python -m bench.state_bench``: how fast per-shipment state comes back from the changelog, and
what one tracked shipment costs in memory.

Writes ``--shipments`` (200,000) realistic states to a compacted changelog through the
consumer's own ``Changelog.write``, times ``Changelog.restore`` over every partition (the work a
newly assigned partition waits for), then measures the memory a ``PartitionStore`` holding all
of them retains: the Python objects traced by ``tracemalloc`` (states, dict, timer heap), and the
process's RSS growth as a cross-check. Starts its own broker (``devkit.broker.kafka_cluster``:
``KAFKA_BOOTSTRAP_SERVERS`` when set).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import time
import tracemalloc
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from consumer.kafka_io import consumer_config
from consumer.model import ShipmentStatus
from consumer.producer import AsyncProducer
from consumer.rules import RulesConfig, ShipmentState
from consumer.state.changelog import Changelog
from consumer.state.codec import encode_state
from consumer.state.store import PartitionStore, RestoredStates
from devkit.broker import kafka_cluster

WRITE_WINDOW = 5_000
"""States awaiting their acknowledgement at once while writing."""


@dataclass(frozen=True)
class Result:
    shipments: int
    partitions: int
    changelog_bytes: int
    write_seconds: float
    restore_seconds: list[float]
    traced_bytes: int
    rss_bytes: int

    def table(self) -> str:
        restore = sum(self.restore_seconds)
        rows = [
            ("shipments (states in the changelog)", f"{self.shipments:,}"),
            ("changelog partitions", f"{self.partitions}"),
            ("encoded state, mean", f"{self.changelog_bytes / self.shipments:,.0f} B"),
            ("changelog write (acked)", f"{self.shipments / self.write_seconds:,.0f} states/s"),
            ("state restore", f"{self.shipments / restore:,.0f} states/s ({restore:.2f} s)"),
            ("slowest partition restore", f"{max(self.restore_seconds):.2f} s"),
            ("memory per shipment (tracemalloc)", f"{self.traced_bytes / self.shipments:,.0f} B"),
            ("memory per shipment (RSS growth)", f"{self.rss_bytes / self.shipments:,.0f} B"),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value:>28}" for name, value in rows)


def states(count: int, seed: int = 1) -> Iterator[ShipmentState]:
    """Plausible mid-journey states: IDs like the generator's, a carrier, an ETA, eight
    remembered eventIds, a tenth of them delivered."""
    rng = random.Random(seed)
    start = datetime(2024, 5, 1, tzinfo=UTC)
    for number in range(count):
        fulfillment_id = f"ful-{number:08d}"
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


async def write_all(changelog: Changelog, count: int, partitions: int) -> int:
    """Write every state through ``Changelog.write`` (each awaits its ack); returns the bytes."""
    window = asyncio.Semaphore(WRITE_WINDOW)
    written = 0

    async def write(state: ShipmentState) -> None:
        try:
            partition = zlib.crc32(state.fulfillment_id.encode()) % partitions
            await changelog.write(partition, state.fulfillment_id, state, offset=0)
        finally:
            window.release()

    tasks = []
    for state in states(count):
        written += len(encode_state(state))
        await window.acquire()
        tasks.append(asyncio.create_task(write(state)))
    await asyncio.gather(*tasks)
    return written


def restore_all(
    changelog: Changelog, partitions: int
) -> tuple[list[dict[str, ShipmentState]], list[float]]:
    restored, seconds = [], []
    for partition in range(partitions):
        started = time.perf_counter()
        restored.append(changelog.restore(partition))
        seconds.append(time.perf_counter() - started)
    return restored, seconds


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def traced_memory(changelog: Changelog, partitions: int) -> tuple[int, int]:
    """Bytes of Python objects retained by stores built from a fresh restore (tracemalloc),
    and the number of shipments they hold."""
    gc.collect()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        stores = build_stores(restore_all(changelog, partitions)[0])
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    return traced, sum(len(store) for store in stores)


def build_stores(restored: list[RestoredStates]) -> list[PartitionStore]:
    """What ``Pipeline.attach`` builds per partition: the states and their timer heap."""
    return [PartitionStore(RulesConfig(), part) for part in restored]


def create_changelog(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(topic, num_partitions=partitions, config={"cleanup.policy": "compact"})
    for future in admin.create_topics([new]).values():
        future.result()


def run(bootstrap: str, shipments: int, partitions: int) -> Result:
    topic = f"state-bench-{uuid.uuid4().hex[:8]}.state"
    create_changelog(bootstrap, topic, partitions)
    common = {"bootstrap.servers": bootstrap}
    producer = AsyncProducer(common)
    changelog = Changelog(topic, producer, consumer_config(common, "state-bench"))
    try:
        started = time.perf_counter()
        changelog_bytes = asyncio.run(write_all(changelog, shipments, partitions))
        write_seconds = time.perf_counter() - started
        gc.collect()
        rss_before = rss_bytes()
        restored, restore_seconds = restore_all(changelog, partitions)
        stores = build_stores(restored)
        gc.collect()
        rss = rss_bytes() - rss_before
        count = sum(len(store) for store in stores)
        if count != shipments:
            raise RuntimeError(f"restored {count} states, wrote {shipments}")
        del restored, stores
        traced, held = traced_memory(changelog, partitions)
        if held != shipments:
            raise RuntimeError(f"measured {held} states, wrote {shipments}")
    finally:
        producer.close()
        AdminClient(common).delete_topics([topic])
    return Result(
        shipments, partitions, changelog_bytes, write_seconds, restore_seconds, traced, rss
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.state_bench", description=__doc__)
    parser.add_argument("--shipments", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=3)
    args = parser.parse_args(argv)
    with kafka_cluster() as bootstrap:
        result = run(bootstrap, args.shipments, args.partitions)
    print(f"\nState restore and memory ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")
    print(result.table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A 30-second Redo outage under a backlog: the circuit opens, partitions are paused, memory stays
bounded by MAX_BUFFERED_PER_PARTITION, and once Redo is back everything is delivered."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from consumer.delivery.retry import RetryPolicy
from consumer.kafka.fetch import FETCH_BATCH
from devkit.consumer_process import ConsumerProcess, wait_fully_committed
from devkit.expectations import expected_status_bodies
from devkit.generator import tracking_stream
from devkit.kafka_tools import produce_events, wait_until
from devkit.sandbox import SandboxControl
from tests.support.expected_calls import received_bodies

pytestmark = pytest.mark.broker

Env = Callable[..., dict[str, str]]

PARTITIONS = 6
SHIPMENTS = 600
SCANS_PER_SHIPMENT = 8
MAX_BUFFERED_PER_PARTITION = 100
MAX_IN_FLIGHT = 32
OUTAGE_SECONDS = 30.0
PROBE_INTERVAL_SECONDS = 0.5  # RETRY_MAX_SECONDS of consumer_env caps the circuit's probe interval
# Fetched-but-not-done records: a partition is paused once over its limit, but the batch that
# took it over may hold up to FETCH_BATCH records of it.
BUFFER_BOUND = PARTITIONS * (MAX_BUFFERED_PER_PARTITION + FETCH_BATCH)
# Peak RSS of the consumer: measured at about 70 MiB on this workload, most of it the
# interpreter and its libraries. 200 MiB leaves room for allocator noise and other library
# versions; a consumer that kept fetching during the outage would hold the whole backlog in
# Python objects and librdkafka's queues and, with a backlog of production size, go far past it.
PEAK_RSS_BOUND = 200 * 2**20
# Requests Redo may see during the outage: those in flight when it began, the run of failures
# that opens the circuit, then one probe per interval (the first few come faster), plus slack.
OUTAGE_REQUEST_BOUND = (
    MAX_IN_FLIGHT
    + RetryPolicy().circuit_failure_threshold
    + int(OUTAGE_SECONDS / PROBE_INTERVAL_SECONDS)
    + 20
)


def test_outage_pauses_consumption_bounds_memory_and_recovers_fully(
    kafka_bootstrap: str, new_topic: Callable[..., str], sandbox: SandboxControl, consumer_env: Env
) -> None:
    topic = new_topic(partitions=PARTITIONS)
    events = tracking_stream(shipments=SHIPMENTS, scans_per_shipment=SCANS_PER_SHIPMENT, seed=31)
    produce_events(kafka_bootstrap, topic, events)
    env = consumer_env(
        topic,
        MAX_BUFFERED_PER_PARTITION=str(MAX_BUFFERED_PER_PARTITION),
        MAX_IN_FLIGHT=str(MAX_IN_FLIGHT),
    )
    group = env["KAFKA_GROUP_ID"]

    with ConsumerProcess(env) as proc:
        wait_until(
            lambda: len(sandbox.calls(status_code=200)) >= 300,
            120,
            "300 calls before the outage",
        )
        sandbox.set_faults(fail_next={"count": 1_000_000_000, "status": 503})
        outage_ends = time.monotonic() + OUTAGE_SECONDS
        seen = {"circuit_open": 0.0, "paused": 0.0, "buffered": 0.0}

        def observe() -> bool:
            """Note the peaks of the gauges; true once the circuit and the pausing showed."""
            samples = {
                "circuit_open": proc.metric("tracking_redo_circuit_open"),
                "paused": proc.metric("tracking_paused_partitions"),
                "buffered": proc.metric("tracking_buffered_records"),
            }
            for name, value in samples.items():
                seen[name] = max(seen[name], value or 0.0)
            return seen["circuit_open"] == 1 and seen["paused"] > 0

        wait_until(
            observe,
            OUTAGE_SECONDS,
            f"circuit open and partitions paused during the outage; consumer log:\n{proc.tail()}",
        )
        while time.monotonic() < outage_ends:  # the outage lasts its full length
            observe()
            time.sleep(0.5)
        assert seen["paused"] == PARTITIONS, "an open circuit pauses every partition"
        assert seen["buffered"] <= BUFFER_BOUND
        failed = sandbox.stats().get("503", 0)

        sandbox.clear_faults()
        wait_fully_committed(kafka_bootstrap, group, topic, [proc], timeout=240)
        wait_until(
            lambda: proc.metric("tracking_redo_circuit_open") == 0, 10, "the circuit closed again"
        )
        peak_rss = proc.peak_rss_bytes()
        assert proc.stop() == 0

    print(
        f"peak RSS {peak_rss / 2**20:.0f} MiB, peak buffered {seen['buffered']:.0f}, "
        f"503 answers {failed}"
    )
    assert peak_rss < PEAK_RSS_BOUND
    assert received_bodies(sandbox) == expected_status_bodies(events)
    assert failed <= OUTAGE_REQUEST_BOUND, (
        f"Redo got {failed} requests during the outage: an open circuit lets only probes through"
    )

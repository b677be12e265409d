"""Per-fulfillment order holds under load: 20,000 scans on six partitions, while Redo answers
each call after a random 0-50 ms, so later calls of other fulfillments constantly overtake."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from devkit.consumer_process import ConsumerProcess, wait_fully_committed
from devkit.expectations import expected_status_bodies
from devkit.generator import tracking_stream
from devkit.kafka_tools import fully_committed, produce_events
from devkit.sandbox import SandboxControl
from tests.support.expected_calls import received_bodies

pytestmark = pytest.mark.broker

Env = Callable[..., dict[str, str]]

SHIPMENTS = 2_000
SCANS_PER_SHIPMENT = 10


def test_every_fulfillment_gets_its_calls_in_input_order_under_random_latency(
    kafka_bootstrap: str, new_topic: Callable[..., str], sandbox: SandboxControl, consumer_env: Env
) -> None:
    topic = new_topic(partitions=6)
    events = tracking_stream(shipments=SHIPMENTS, scans_per_shipment=SCANS_PER_SHIPMENT, seed=11)
    assert produce_events(kafka_bootstrap, topic, events) == 20_000
    sandbox.set_faults(latency_ms=0, latency_jitter_ms=50)
    env = consumer_env(topic)
    group = env["KAFKA_GROUP_ID"]

    started = time.monotonic()
    with ConsumerProcess(env) as proc:
        wait_fully_committed(kafka_bootstrap, group, topic, [proc], 540)
        elapsed = time.monotonic() - started
        assert proc.stop() == 0
    print(f"20,000 scans in {elapsed:.1f}s ({20_000 / elapsed:.0f}/s)")

    expected = expected_status_bodies(events)
    received = received_bodies(sandbox)
    assert len(expected) == SHIPMENTS
    assert set(received) == set(expected)
    disordered = [f for f, bodies in expected.items() if received[f] != bodies]
    assert not disordered, (
        f"{len(disordered)} fulfillments got calls missing, repeated or out of order, "
        f"e.g. {disordered[0]}: expected {expected[disordered[0]]}, got {received[disordered[0]]}"
    )
    assert fully_committed(kafka_bootstrap, group, topic)

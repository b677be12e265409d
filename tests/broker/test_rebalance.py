"""Partitions changing hands mid-stream lose nothing and reorder nothing: two consumers share a
steady stream, a third joins, then one of the first two leaves with SIGTERM."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest

from consumer.model import TrackingEvent
from devkit.consumer_process import ConsumerProcess, wait_fully_committed
from devkit.expectations import expected_status_bodies
from devkit.generator import tracking_stream
from devkit.kafka_tools import produce_events, wait_until
from devkit.sandbox import SandboxControl
from tests.support.expected_calls import first_occurrences, received_bodies

pytestmark = pytest.mark.broker

Env = Callable[..., dict[str, str]]

CHUNKS = 12
CHUNK_INTERVAL_SECONDS = 1.0


def produce_steadily(bootstrap: str, topic: str, events: Sequence[TrackingEvent]) -> None:
    """The stream in CHUNKS slices, one per interval, so records keep arriving meanwhile."""
    size = -(-len(events) // CHUNKS)
    for start in range(0, len(events), size):
        produce_events(bootstrap, topic, events[start : start + size])
        time.sleep(CHUNK_INTERVAL_SECONDS)


def test_members_joining_and_leaving_mid_stream_lose_and_reorder_nothing(
    kafka_bootstrap: str, new_topic: Callable[..., str], sandbox: SandboxControl, consumer_env: Env
) -> None:
    topic = new_topic(partitions=6)
    events = tracking_stream(shipments=600, scans_per_shipment=5, seed=41)
    expected = expected_status_bodies(events)
    total = sum(map(len, expected.values()))
    sandbox.set_faults(latency_ms=5, latency_jitter_ms=20)
    env = consumer_env(topic)
    group = env["KAFKA_GROUP_ID"]

    def delivered() -> int:
        return len(sandbox.calls(status_code=200))

    with ExitStack() as stack:
        first = stack.enter_context(ConsumerProcess(env))
        second = stack.enter_context(ConsumerProcess(env))
        first.wait_assigned()
        second.wait_assigned()
        background = stack.enter_context(ThreadPoolExecutor(max_workers=1))
        producing = background.submit(produce_steadily, kafka_bootstrap, topic, events)

        wait_until(lambda: delivered() >= total // 5, 120, f"{total // 5} calls before the join")
        third = stack.enter_context(ConsumerProcess(env))
        third.wait_assigned()

        wait_until(lambda: delivered() >= total // 2, 120, f"{total // 2} calls before the leave")
        assert first.stop() == 0
        left_at = delivered()
        assert left_at < total, "the member left after the stream was done: not mid-stream"

        producing.result()
        wait_fully_committed(kafka_bootstrap, group, topic, [second, third])
        assert second.stop() == 0
        assert third.stop() == 0

    received = received_bodies(sandbox)
    duplicates = 0
    for fulfillment, bodies in expected.items():
        got = received[fulfillment]
        assert first_occurrences(got) == bodies, f"{fulfillment}: calls missing or out of order"
        duplicates += len(got) - len(bodies)
    print(
        f"{total} calls expected, {left_at} delivered when a member left; duplicates: {duplicates}"
    )


def test_a_member_joining_during_a_redo_outage_leaves_the_group_able_to_recover(
    kafka_bootstrap: str, new_topic: Callable[..., str], sandbox: SandboxControl, consumer_env: Env
) -> None:
    """Redo goes down, the circuit opens, a second member joins and takes partitions over while
    every call still fails; once Redo is back, both finish every partition."""
    topic = new_topic(partitions=6)
    events = tracking_stream(shipments=300, scans_per_shipment=4, seed=43)
    expected = expected_status_bodies(events)
    produce_events(kafka_bootstrap, topic, events)
    env = consumer_env(topic)
    group = env["KAFKA_GROUP_ID"]
    sandbox.set_faults(latency_ms=200)  # the backlog takes seconds, not the moment Redo fails

    with ExitStack() as stack:
        first = stack.enter_context(ConsumerProcess(env))
        wait_until(
            lambda: len(sandbox.calls(status_code=200)) >= 50, 60, "50 calls before Redo fails"
        )
        sandbox.set_faults(fail_next={"count": 1_000_000, "status": 503})
        wait_until(
            lambda: first.alive_or_fail() and first.metric("tracking_redo_circuit_open") == 1,
            60,
            f"the first member's circuit open; its log:\n{first.tail()}",
        )
        failed_before_join = len(sandbox.calls(status_code=503))
        second = stack.enter_context(ConsumerProcess(env))
        second.wait_assigned()
        wait_until(
            lambda: len(sandbox.calls(status_code=503)) >= failed_before_join + 10,
            60,
            "calls failing after the join",
        )
        sandbox.clear_faults()
        wait_fully_committed(kafka_bootstrap, group, topic, [first, second])
        assert first.stop() == 0
        assert second.stop() == 0

    received = received_bodies(sandbox)
    for fulfillment, bodies in expected.items():
        assert first_occurrences(received[fulfillment]) == bodies, f"{fulfillment}: calls lost"

"""When a partition's clock may follow the wall clock: only once the consumer's position reached
the log end. A paused partition with unread records is not caught up (its shipments' newer scans
are unread), and a partition written by a transactional producer is, although its last offset
is a commit marker, not a record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Producer

from consumer.model import ShipmentStatus, TrackingEvent
from devkit.consumer_process import ConsumerProcess, wait_fully_committed
from devkit.encoding import encode_raw
from devkit.kafka_tools import produce_events, wait_until
from devkit.sandbox import SandboxControl
from tests.support.expected_calls import received_bodies

pytestmark = pytest.mark.broker

Env = Callable[..., dict[str, str]]
STALL = timedelta(seconds=15)


@pytest.fixture
def quick_stall(tmp_path: Path) -> Path:
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"defaults: {{stall_in_transit: {STALL.seconds}s}}\n")
    return rules


def _scan(fulfillment: str, status: ShipmentStatus, at: datetime, n: int) -> TrackingEvent:
    return TrackingEvent(f"{fulfillment}-{n}", "store", "order", fulfillment, status, at)


def test_a_paused_partition_with_unread_scans_fires_no_wall_clock_timer(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    sandbox: SandboxControl,
    consumer_env: Env,
    quick_stall: Path,
) -> None:
    """Shipment A is in transit; Redo goes down, the circuit opens and pauses the partition;
    A's "delivered" scan arrives, unread; A's stall deadline passes on the wall clock. Once
    Redo is back the delivered scan is read: A was never stalled, so no stall may be sent."""
    topic = new_topic(partitions=1)
    env = consumer_env(topic, RULES_FILE=str(quick_stall))
    group = env["KAFKA_GROUP_ID"]
    t0 = datetime.now(UTC)
    shipment_a = _scan("ful-a", ShipmentStatus.IN_TRANSIT, t0, 0)

    with ConsumerProcess(env) as proc:
        produce_events(kafka_bootstrap, topic, [shipment_a])
        wait_fully_committed(kafka_bootstrap, group, topic, [proc])
        sandbox.set_faults(fail_next={"count": 1_000_000, "status": 503})
        produce_events(kafka_bootstrap, topic, [_scan("ful-b", ShipmentStatus.DELIVERED, t0, 0)])
        wait_until(
            lambda: (
                proc.metric("tracking_paused_partitions") == 1
                and proc.metric("tracking_redo_circuit_open") == 1
            ),
            60,
            f"the open circuit to pause the partition; log:\n{proc.tail()}",
        )
        delivered = replace(shipment_a, event_id="ful-a-1", status=ShipmentStatus.DELIVERED)
        produce_events(kafka_bootstrap, topic, [replace(delivered, occurred_at=t0 + STALL / 3)])
        stall_due = t0 + STALL + timedelta(seconds=3)  # past A's deadline, ticks included
        wait_until(lambda: datetime.now(UTC) > stall_due, 60, "A's stall deadline to pass")
        assert proc.metric("tracking_paused_partitions") == 1, "the partition must still be held"

        sandbox.clear_faults()
        wait_fully_committed(kafka_bootstrap, group, topic, [proc], timeout=120)
        assert proc.stop() == 0, proc.tail()

    assert [b["status"] for b in received_bodies(sandbox)["ful-a"]] == ["in_transit", "delivered"]
    assert "ful-a" not in received_bodies(sandbox, events=True), "a false stall was reported"


def test_a_transactional_partition_is_caught_up_at_its_commit_marker(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    sandbox: SandboxControl,
    consumer_env: Env,
    quick_stall: Path,
) -> None:
    """The stall of a shipment scanned once fires on the wall clock, which needs the partition
    to be caught up; written in a transaction, the partition ends with a commit marker."""
    topic = new_topic(partitions=1)
    env = consumer_env(topic, RULES_FILE=str(quick_stall), KAFKA_ISOLATION_LEVEL="read_committed")
    scan = _scan("ful-txn", ShipmentStatus.IN_TRANSIT, datetime.now(UTC), 0)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "transactional.id": topic})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, encode_raw(scan), key=scan.fulfillment_id.encode())
    producer.commit_transaction(30)

    with ConsumerProcess(env) as proc:
        wait_until(
            lambda: "ful-txn" in received_bodies(sandbox, events=True),
            STALL.seconds + 60,
            f"the wall-clock stall of a transactionally written shipment; log:\n{proc.tail()}",
        )
        assert proc.stop() == 0, proc.tail()
    [stall] = received_bodies(sandbox, events=True)["ful-txn"]
    assert stall["status"] == "stalled_in_transit"

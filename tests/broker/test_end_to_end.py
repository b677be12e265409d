"""The spine end to end: the consumer as a subprocess, a real broker, the Redo sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from devkit.consumer_process import ConsumerProcess, wait_fully_committed
from devkit.expectations import expected_status_bodies as expected_bodies
from devkit.generator import tracking_stream
from devkit.kafka_tools import (
    committed_offsets,
    fully_committed,
    produce,
    produce_events,
    read_topic,
    wait_until,
)
from devkit.sandbox import SandboxControl
from tests.support.expected_calls import received_bodies

pytestmark = pytest.mark.broker

Env = Callable[..., dict[str, str]]


def test_every_scan_becomes_one_ordered_call_and_offsets_reach_the_end(
    kafka_bootstrap: str, new_topic: Callable[..., str], sandbox: SandboxControl, consumer_env: Env
) -> None:
    topic = new_topic(partitions=3)
    events = tracking_stream(shipments=50, scans_per_shipment=4, unknown_every=17)
    produce_events(kafka_bootstrap, topic, events)
    env = consumer_env(topic)

    expected = expected_bodies(events)
    assert sum(map(len, expected.values())) == 200 - 200 // 17
    # A shipment whose "delivered" scan came as "unknown" stays out for delivery: once 24 h
    # pass after its last scan (of any status), the wall-clock timer reports it stalled.
    now = datetime.now(UTC)
    last_scan = {event.fulfillment_id: event.occurred_at for event in events}
    stall_due = {
        fulfillment: last_scan[fulfillment] + timedelta(hours=24)
        for fulfillment, bodies in expected.items()
        if bodies[-1]["status"] == "out_for_delivery"
    }
    certain = {f for f, due in stall_due.items() if due < now - timedelta(minutes=1)}
    borderline = {f for f, due in stall_due.items() if abs(due - now) <= timedelta(minutes=1)}
    assert certain, "the stream should contain stalled shipments"

    with ConsumerProcess(env) as proc:
        wait_fully_committed(kafka_bootstrap, env["KAFKA_GROUP_ID"], topic, [proc])
        wait_until(
            lambda: certain <= set(received_bodies(sandbox, events=True)),
            30,
            f"stall events for {sorted(certain)}",
        )
        assert proc.stop() == 0

    assert received_bodies(sandbox) == expected
    flagged = received_bodies(sandbox, events=True)
    assert certain <= set(flagged) <= certain | borderline
    assert all(
        [body["status"] for body in bodies] == ["stalled_in_transit"] for bodies in flagged.values()
    )


def test_outage_holds_offsets_until_redo_recovers(
    kafka_bootstrap: str, new_topic: Callable[..., str], sandbox: SandboxControl, consumer_env: Env
) -> None:
    topic = new_topic(partitions=3)
    before = tracking_stream(shipments=10, scans_per_shipment=3, seed=1, prefix="before")
    during = tracking_stream(shipments=10, scans_per_shipment=3, seed=2, prefix="during")
    env = consumer_env(topic)
    group = env["KAFKA_GROUP_ID"]
    produce_events(kafka_bootstrap, topic, before)

    with ConsumerProcess(env) as proc:
        wait_fully_committed(kafka_bootstrap, group, topic, [proc])
        held = committed_offsets(kafka_bootstrap, group, topic)

        sandbox.set_faults(fail_next={"count": 1_000_000, "status": 503})
        produce_events(kafka_bootstrap, topic, during)
        wait_until(lambda: sandbox.stats().get("503", 0) >= 20, 60, "20 answers of 503")
        for _ in range(5):  # across several commit intervals, nothing moves past the outage
            assert committed_offsets(kafka_bootstrap, group, topic) == held
            time.sleep(0.3)

        sandbox.clear_faults()
        wait_fully_committed(kafka_bootstrap, group, topic, [proc])
        assert proc.stop() == 0

    received = received_bodies(sandbox)
    for fulfillment, bodies in expected_bodies(before + during).items():
        assert received[fulfillment] == bodies


def test_kill_9_mid_stream_then_restart_loses_nothing(
    kafka_bootstrap: str, new_topic: Callable[..., str], sandbox: SandboxControl, consumer_env: Env
) -> None:
    topic = new_topic(partitions=3)
    events = tracking_stream(shipments=300, scans_per_shipment=5, seed=3)
    produce_events(kafka_bootstrap, topic, events)
    sandbox.set_faults(latency_ms=5)
    env = consumer_env(topic)

    with ConsumerProcess(env) as first:
        wait_until(
            lambda: len(sandbox.calls(status_code=200)) >= 300, 60, "300 calls before the kill"
        )
        first.kill()
    assert not fully_committed(kafka_bootstrap, env["KAFKA_GROUP_ID"], topic)

    with ConsumerProcess(env) as second:
        wait_fully_committed(kafka_bootstrap, env["KAFKA_GROUP_ID"], topic, [second])
        assert second.stop() == 0

    received = received_bodies(sandbox)
    duplicates = 0
    for fulfillment, bodies in expected_bodies(events).items():
        got = received[fulfillment]
        deduplicated = [b for i, b in enumerate(got) if b not in got[:i]]
        assert deduplicated == bodies, f"{fulfillment}: calls missing or out of order"
        duplicates += len(got) - len(deduplicated)
    print(f"duplicate calls after kill -9: {duplicates}")


def test_undecodable_records_go_to_the_dead_letter_topic_with_their_origin(
    kafka_bootstrap: str, new_topic: Callable[..., str], sandbox: SandboxControl, consumer_env: Env
) -> None:
    topic = new_topic(partitions=3)
    events = tracking_stream(shipments=40, scans_per_shipment=5, seed=4)
    garbage = [(f"ful-{i:05d}".encode(), b"\x02not avro at all" + bytes([i])) for i in range(10)]
    produce_events(kafka_bootstrap, topic, events[:100])
    produce(kafka_bootstrap, topic, garbage)
    produce_events(kafka_bootstrap, topic, events[100:])
    env = consumer_env(topic)

    with ConsumerProcess(env) as proc:
        wait_fully_committed(kafka_bootstrap, env["KAFKA_GROUP_ID"], topic, [proc])
        assert proc.stop() == 0

    dead = read_topic(kafka_bootstrap, f"{topic}.dlq", expected=10)
    assert sorted(m.value() for m in dead) == sorted(value for _, value in garbage)
    originals = {
        (m.partition(), m.offset()): m.value()
        for m in read_topic(kafka_bootstrap, topic, expected=len(events) + 10)
    }
    for message in dead:
        headers = dict(message.headers() or [])
        assert headers["dlq.reason"] == b"decode"
        assert headers["dlq.error"]
        assert headers["dlq.source.topic"] == topic.encode()
        source = (int(headers["dlq.source.partition"]), int(headers["dlq.source.offset"]))
        assert originals[source] == message.value()
    assert received_bodies(sandbox) == expected_bodies(events)


REQUIRED = {
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
    "KAFKA_TOPIC": "t",
    "KAFKA_GROUP_ID": "g",
    "REDO_API_SECRET": "s3cret-value",
}
INVALID = [
    ("AVRO_FRAMING", "xml"),
    ("METRICS_PORT", "not-a-port"),
    ("FORWARD_SCANS", "some"),
    ("MAX_SCAN_AGE", "soon"),
    ("REDO_API_SECRET_FILE", "/nonexistent/secret"),
]


def _run_with(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "REDO_"))}
    return subprocess.run(
        [sys.executable, "-m", "consumer", "run"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_missing_required_setting_exits_2_with_one_line(missing: str) -> None:
    env = {k: v for k, v in REQUIRED.items() if k != missing}
    result = _run_with(env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert missing in lines[0]


@pytest.mark.parametrize(("setting", "value"), INVALID)
def test_invalid_setting_exits_2_naming_it(setting: str, value: str) -> None:
    env = {**REQUIRED, setting: value}
    if setting == "REDO_API_SECRET_FILE":
        del env["REDO_API_SECRET"]
    result = _run_with(env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert setting in lines[0]
    assert "s3cret-value" not in result.stderr

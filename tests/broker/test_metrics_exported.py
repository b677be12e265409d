"""Every metric of ``consumer.ops.metrics`` is exported by a running consumer, and after a run that
touches every path (sent, retried, dead-lettered, undecodable, repeated, late, stale, a rule
firing) each one carries the value that run must have produced."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.metrics import MetricWrapperBase

from consumer.model import ShipmentStatus
from consumer.ops import metrics
from devkit.consumer_process import ConsumerProcess, wait_fully_committed
from devkit.generator import shipment_scans, tracking_stream
from devkit.kafka_tools import end_offsets, produce, produce_events, wait_until
from devkit.sandbox import SandboxControl

pytestmark = pytest.mark.broker

Env = Callable[..., dict[str, str]]

PARTITIONS = 3
GARBAGE = 5
RETRIED_503 = 3


def declared_metrics() -> list[tuple[str, str]]:
    """``(name as exposed, type)`` of every metric defined in ``consumer.ops.metrics``."""
    found = []
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                exposed = family.name + "_total" if family.type == "counter" else family.name
                found.append((exposed, family.type))
    return found


def test_every_metric_is_exported_with_the_values_of_the_run(
    kafka_bootstrap: str, new_topic: Callable[..., str], sandbox: SandboxControl, consumer_env: Env
) -> None:
    topic = new_topic(partitions=PARTITIONS)
    now = datetime.now(UTC).replace(microsecond=0)
    events = tracking_stream(shipments=20, scans_per_shipment=4, seed=61)
    victim = events[0].fulfillment_id  # Redo answers 404: dead-lettered at once (window 0)
    late_for = next(e for e in events if e.fulfillment_id != victim)
    last = [e for e in events if e.fulfillment_id == late_for.fulfillment_id][-1]
    late = replace(  # a new scan older than one already applied: out of order, no call
        last,
        event_id=last.event_id + "-late",
        status=ShipmentStatus.IN_TRANSIT,
        occurred_at=last.occurred_at - timedelta(hours=1),
    )
    rng = random.Random(62)
    stale = shipment_scans("stale-00001", now - timedelta(days=20), 2, rng)  # past MAX_SCAN_AGE
    stalled = shipment_scans("stalled-00001", now - timedelta(days=5), 2, rng)  # > 72 h idle
    garbage = [(f"junk-{i}".encode(), b"\x02not avro" + bytes([i])) for i in range(GARBAGE)]

    produce_events(kafka_bootstrap, topic, [*events, events[5], late, *stale, *stalled])
    produce(kafka_bootstrap, topic, garbage)
    produced = len(events) + 1 + 1 + len(stale) + len(stalled) + GARBAGE
    victim_records = sum(1 for e in events if e.fulfillment_id == victim)
    sandbox.set_faults(fail_next={"count": RETRIED_503, "status": 503}, not_found=[victim])
    env = consumer_env(topic, NOT_FOUND_RETRY_WINDOW_SECONDS="0")

    with ConsumerProcess(env) as proc:
        wait_fully_committed(kafka_bootstrap, env["KAFKA_GROUP_ID"], topic, [proc])
        wait_until(
            lambda: proc.metric("tracking_rule_firings_total", rule="stalled_in_transit"),
            30,
            "the stall timer of the idle shipment to fire",
        )

        def lag_reported() -> bool:  # librdkafka statistics arrive every 5 s
            lags = [
                proc.metric("tracking_consumer_lag_records", partition=str(p))
                for p in range(PARTITIONS)
            ]
            return all(lag == 0 for lag in lags)

        wait_until(lag_reported, 30, "a lag of 0 reported for every partition")
        text = proc.metrics_text()
        value = proc.metric
        stats = sandbox.stats()
        ends = end_offsets(kafka_bootstrap, topic)

        for name, kind in declared_metrics():
            assert f"# HELP {name} " in text, f"{name} is not exported"
            assert f"# TYPE {name} {kind}" in text, f"{name} is not exported as a {kind}"

        assert value("tracking_records_consumed_total", topic=topic) == produced
        assert (value("tracking_records_done_total", outcome="sent") or 0) > 0
        assert value("tracking_records_done_total", outcome="dead_lettered") == (
            GARBAGE + victim_records
        )
        assert value("tracking_records_done_total", outcome="duplicate") == 1
        assert value("tracking_records_done_total", outcome="out_of_order") == 1
        assert value("tracking_decode_errors_total") == GARBAGE
        assert value("tracking_dead_letters_total", reason="decode") == GARBAGE
        assert value("tracking_dead_letters_total", reason="redo_404") == victim_records
        assert value("tracking_redo_requests_total", response_class="2xx") == stats["200"]
        assert value("tracking_redo_requests_total", response_class="4xx") == stats["404"]
        assert value("tracking_redo_requests_total", response_class="5xx") == RETRIED_503
        assert value("tracking_redo_request_duration_seconds_count") == sum(stats.values())
        assert value("tracking_redo_retries_total", reason="server_error") == RETRIED_503
        assert value("tracking_redo_in_flight_requests") == 0
        assert value("tracking_redo_auth_blocked") == 0
        assert value("tracking_redo_circuit_open") == 0
        assert value("tracking_paused_partitions") == 0
        assert value("tracking_buffered_records") == 0
        assert value("tracking_assigned_partitions") == PARTITIONS
        for partition, end in ends.items():
            assert value("tracking_committed_offset", partition=str(partition)) == end
        assert value("tracking_event_to_call_latency_seconds_count") == stats["200"]
        assert (value("tracking_event_to_call_latency_seconds_count", kind="event") or 0) >= 1
        assert (value("tracking_shipments_in_state") or 0) > 0
        assert value("tracking_dedup_drops_total") == 1
        assert value("tracking_out_of_order_scans_total") == 1
        assert value("tracking_stale_drops_total", kind="status") == len(stale)
        assert (value("tracking_state_restore_duration_seconds_count") or 0) >= PARTITIONS
        assert proc.stop() == 0

"""A month of backlog replayed from offset 0 on the real broker: exactly the rule calls the
stories call for (``devkit.scenarios``), and none merely because the consumer was behind."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from devkit.consumer_process import ConsumerProcess, wait_fully_committed
from devkit.kafka_tools import wait_until
from devkit.sandbox import SandboxControl
from devkit.scenarios import Kind, backlog, explain, produce_in_order, received, wait_for_rule_calls

pytestmark = pytest.mark.broker

Env = Callable[..., dict[str, str]]


def test_backlog_replay_makes_exactly_the_expected_rule_calls(
    kafka_bootstrap: str, new_topic: Callable[..., str], sandbox: SandboxControl, consumer_env: Env
) -> None:
    now = datetime.now(UTC)
    scenario = backlog(500, end=now - timedelta(days=10), seed=11)
    records = scenario.records()
    topic = new_topic(partitions=3)
    produce_in_order(kafka_bootstrap, topic, records)
    expected_events = scenario.expected_events(now)
    expected_statuses = scenario.expected_statuses()
    assert all(scenario.kinds()[kind] >= 50 for kind in Kind), scenario.kinds()
    # A slow Redo keeps the calls far behind the fetching, whose clock then runs days ahead
    # of the scans still waiting for their turn. At 10 ms (64 calls in flight: 0.5 s for every
    # call) a loaded machine saw 2,034 of 3,176 calls sent by the time the fetch count was read;
    # at 50 ms the calls take 2.5 s, the fetch well under one.
    sandbox.set_faults(latency_ms=50)
    env = consumer_env(topic, MAX_SCAN_AGE="0", FORWARD_SCANS="all")

    with ConsumerProcess(env) as proc:
        wait_until(
            lambda: (
                proc.alive_or_fail()
                and proc.probe("/metrics") == 200
                and proc.metric("tracking_records_consumed_total") == len(records)
            ),
            60,
            f"all {len(records)} records fetched",
        )
        sent_when_fetched = len(sandbox.calls(status_code=200))
        wait_fully_committed(kafka_bootstrap, env["KAFKA_GROUP_ID"], topic, [proc])
        wait_for_rule_calls(sandbox, expected_events, scenario)
        assert proc.stop() == 0

    total = sum(expected_events.values()) + sum(expected_statuses.values())
    assert sent_when_fetched < total // 2, "the consumer should have lagged behind its fetching"
    statuses, events = received(sandbox.calls(status_code=200))
    kinds = {s.fulfillment_id: s.kind for s in scenario.shipments}
    false_stalls = [
        key
        for key in events - expected_events
        if key[1] == "stalled_in_transit" and kinds.get(key[0]) is not Kind.NEVER_DELIVERED
    ]
    assert not false_stalls, "flagged stalled though scanned in time:\n" + explain(
        false_stalls, scenario
    )
    missing, extra = expected_events - events, events - expected_events
    assert not missing and not extra, (
        f"{sum(missing.values())} rule calls missing:\n{explain(missing, scenario)}\n"
        f"{sum(extra.values())} unexpected:\n{explain(extra, scenario)}"
    )
    assert statuses == expected_statuses, explain(
        (statuses - expected_statuses) + (expected_statuses - statuses), scenario
    )

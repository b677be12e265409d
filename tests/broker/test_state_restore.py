"""Per-shipment state survives a crash: kill -9 mid-backlog, carry on with two consumers that
restore it from the changelog, and every rule call is still made, almost always exactly once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devkit.consumer_process import ConsumerProcess, wait_fully_committed
from devkit.kafka_tools import fully_committed, wait_until
from devkit.sandbox import SandboxControl
from devkit.scenarios import (
    CallKey,
    backlog,
    explain,
    produce_in_order,
    received,
    wait_for_rule_calls,
)

pytestmark = pytest.mark.broker

Env = Callable[..., dict[str, str]]


CRASH_WINDOW = timedelta(seconds=10)
"""How long before the kill a repeated call may first have been received: its transition was
unfinished at the kill (a later call of it still queued for a free slot, or its state not yet
acknowledged by the changelog), so the replay recomputes and resends it. Calls sent earlier than
this were done and must never repeat."""


def first_arrivals(calls: list[dict[str, Any]]) -> dict[CallKey, datetime]:
    """When the sandbox first received each call."""
    first: dict[CallKey, datetime] = {}
    for call in calls:
        body = call["body"]
        key = (call["fulfillment_id"], body["status"], body["datetime"])
        at = datetime.fromisoformat(call["received_at"].replace("Z", "+00:00"))
        first[key] = min(at, first.get(key, at))
    return first


def repeats(calls: Counter[CallKey]) -> int:
    return sum(count - 1 for count in calls.values())


def repeated_shipments(calls: Counter[CallKey]) -> set[str]:
    return {fulfillment_id for (fulfillment_id, _, _), count in calls.items() if count > 1}


def test_kill_mid_backlog_then_two_consumers_make_every_rule_call_once(
    kafka_bootstrap: str, new_topic: Callable[..., str], sandbox: SandboxControl, consumer_env: Env
) -> None:
    now = datetime.now(UTC)
    scenario = backlog(500, end=now - timedelta(days=10), seed=23)
    topic = new_topic(partitions=3)
    produce_in_order(kafka_bootstrap, topic, scenario.records())
    expected_events = scenario.expected_events(now)
    expected_statuses = scenario.expected_statuses()
    total = sum(expected_events.values()) + sum(expected_statuses.values())
    sandbox.set_faults(latency_ms=5)
    # The crash window holds the calls in flight at the kill (their 2xx never reached the
    # consumer, or their state never reached the changelog): MAX_IN_FLIGHT bounds it.
    # A short session lets the group drop the killed member in seconds, not the default 45 s.
    env = consumer_env(topic, MAX_SCAN_AGE="0", MAX_IN_FLIGHT="16", KAFKA_SESSION_TIMEOUT_MS="6000")
    group = env["KAFKA_GROUP_ID"]

    with ConsumerProcess(env) as first:
        wait_until(
            lambda: first.alive_or_fail() and len(sandbox.calls(status_code=200)) >= total * 0.4,
            60,
            f"{int(total * 0.4)} calls before the kill",
        )
        killed_at = datetime.now(UTC)
        first.kill()
    assert not fully_committed(kafka_bootstrap, group, topic)

    with ConsumerProcess(env) as second, ConsumerProcess(env) as third:
        wait_fully_committed(kafka_bootstrap, group, topic, [second, third])
        wait_for_rule_calls(sandbox, expected_events, scenario)
        wait_until(
            lambda: all(
                (p.metric("tracking_assigned_partitions") or 0) >= 1 for p in (second, third)
            ),
            30,
            "both consumers to own a partition",
        )
        assert second.stop() == 0
        assert third.stop() == 0

    calls = sandbox.calls(status_code=200)
    statuses, events = received(calls)
    repeated_events = repeated_shipments(events)
    shipments = len(scenario.shipments)
    unexpected = [key for key in events if key not in expected_events]
    print(
        f"\nafter kill -9: {len(repeated_events)} of {shipments} shipments got a rule call "
        f"twice ({repeats(events)} repeated event calls), "
        f"{len(repeated_shipments(statuses))} a status call twice ({repeats(statuses)} repeated "
        f"status calls); {sum(events[key] for key in unexpected)} event calls no story asked for"
    )
    missing = expected_events - events
    assert not missing, f"rule calls never made:\n{explain(missing, scenario)}"
    assert not unexpected, f"rule calls no story asked for:\n{explain(unexpected, scenario)}"
    assert set(statuses) == set(expected_statuses), explain(
        set(statuses) ^ set(expected_statuses), scenario
    )
    first_seen = first_arrivals(calls)
    outside_window = [
        key
        for key, count in (events + statuses).items()
        if count > 1
        and not killed_at - CRASH_WINDOW <= first_seen[key] <= killed_at + timedelta(seconds=1)
    ]
    assert not outside_window, (
        "repeated though not in flight at the kill (first received, seconds after the kill: "
        + ", ".join(
            f"{(first_seen[key] - killed_at).total_seconds():.1f}" for key in outside_window
        )
        + "):\n"
        + explain(outside_window, scenario)
    )
    # Every repeat was in the crash window (above); how many fall in it depends on what was in
    # flight or awaiting its state acknowledgement at the kill: 3 to 7 of 500 in seven runs on
    # the shared 2-core machine (MAX_IN_FLIGHT=16, linger 20 ms). 3 % bounds that with room.
    assert len(repeated_events) <= shipments * 3 // 100, explain(
        [key for key, count in events.items() if count > 1], scenario
    )

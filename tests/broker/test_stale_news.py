"""Stale news (docs/design.md §4): month-old scans update the state but send nothing with the
default MAX_SCAN_AGE, and every call with MAX_SCAN_AGE=0."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from consumer.rules import ShipmentState
from consumer.state.codec import decode_state
from devkit.consumer_process import ConsumerProcess, wait_fully_committed
from devkit.kafka_tools import end_offsets, wait_until
from devkit.sandbox import SandboxControl
from devkit.scenarios import (
    Kind,
    Scenario,
    Shipment,
    backlog,
    explain,
    produce_in_order,
    received,
    wait_for_rule_calls,
)

pytestmark = pytest.mark.broker

Env = Callable[..., dict[str, str]]

# Default expiry would tombstone these month-old shipments; keep them to inspect their state.
KEEP_STATE = """\
defaults:
  expire_after_terminal: 365d
  expire_after_last_scan: 365d
"""


def month_old(now: datetime) -> Scenario:
    """Scans 20 to 35 days old: all far older than the default MAX_SCAN_AGE of 7 days."""
    return backlog(150, end=now - timedelta(days=20), days=15, seed=5)


def latest_states(bootstrap: str, topic: str) -> dict[str, ShipmentState | None]:
    """The changelog as compaction will leave it: the last record per key (None: tombstone)."""
    ends = end_offsets(bootstrap, topic)
    reader = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"changelog-reader-{uuid.uuid4()}",
            "enable.auto.commit": "false",
        }
    )
    latest: dict[str, ShipmentState | None] = {}
    try:
        reader.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p, end in ends.items() if end]
        )
        pending = {p for p, end in ends.items() if end}
        while pending:
            for message in reader.consume(500, 1.0):
                if message.error() is not None:
                    raise RuntimeError(f"reading {topic}: {message.error()}")
                value = message.value()
                latest[message.key().decode()] = None if value is None else decode_state(value)
                if message.offset() + 1 >= ends[message.partition()]:
                    pending.discard(message.partition())
    finally:
        reader.close()
    return latest


def state_problems(story: Shipment, state: ShipmentState | None) -> list[str]:
    """How ``state`` differs from what the whole story should have left behind."""
    if state is None:
        return ["no state (or a tombstone)"]
    last = story.last_scan
    eta = last.estimated_delivery_date
    delivered = story.kind is not Kind.NEVER_DELIVERED
    wanted = {
        "last_scan_at": last.occurred_at,
        "last_status": story.last_status,
        "last_status_sent": story.last_status,
        "current_eta": eta,
        "terminal_at": last.occurred_at if delivered else None,
        "stall_notified": story.kind is Kind.NEVER_DELIVERED,
        "notified_delayed": (eta,)
        if story.kind in (Kind.ETA_SLIPPING, Kind.NEVER_DELIVERED)
        else (),
        "notified_early": (eta,) if story.kind is Kind.EARLY else (),
    }
    problems = [
        f"{name}={getattr(state, name)!r}, wanted {value!r}"
        for name, value in wanted.items()
        if getattr(state, name) != value
    ]
    seen = {arrival.event.event_id for arrival in story.arrivals()}
    if not seen <= set(state.recent_event_ids):
        problems.append(f"eventIds not remembered: {sorted(seen - set(state.recent_event_ids))}")
    return problems


def test_month_old_backlog_sends_nothing_by_default_and_leaves_the_state_up_to_date(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    sandbox: SandboxControl,
    consumer_env: Env,
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    scenario = month_old(now)
    topic = new_topic(partitions=3)
    produce_in_order(kafka_bootstrap, topic, scenario.records())
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(KEEP_STATE)
    env = consumer_env(topic, RULES_FILE=str(rules_file))
    assert "MAX_SCAN_AGE" not in env
    changelog = f"{env['KAFKA_GROUP_ID']}.{topic}.state"
    stories = scenario.by_id()

    def wrong_states() -> dict[str, list[str]]:
        states = latest_states(kafka_bootstrap, changelog)
        found = {f: state_problems(story, states.get(f)) for f, story in stories.items()}
        return {f: problems for f, problems in found.items() if problems}

    with ConsumerProcess(env) as proc:
        wait_fully_committed(kafka_bootstrap, env["KAFKA_GROUP_ID"], topic, [proc])
        try:  # timers of the never-delivered fire on the wall clock once caught up
            wait_until(lambda: not wrong_states(), 30, "the changelog to hold every story's end")
        except TimeoutError:
            wrong = wrong_states()
            pytest.fail(f"{len(wrong)} states not up to date, e.g. {list(wrong.items())[:3]}")
        dropped_statuses = proc.metric("tracking_stale_drops_total", kind="status")
        dropped_events = proc.metric("tracking_stale_drops_total", kind="event")
        assert proc.stop() == 0

    assert sandbox.calls() == []
    assert dropped_statuses == sum(scenario.expected_statuses().values())
    assert dropped_events == sum(scenario.expected_events(now).values())
    assert sum(1 for s in latest_states(kafka_bootstrap, changelog).values() if s) == len(stories)


def test_month_old_backlog_sends_every_call_with_max_scan_age_zero(
    kafka_bootstrap: str, new_topic: Callable[..., str], sandbox: SandboxControl, consumer_env: Env
) -> None:
    now = datetime.now(UTC)
    scenario = month_old(now)
    topic = new_topic(partitions=3)
    produce_in_order(kafka_bootstrap, topic, scenario.records())
    env = consumer_env(topic, MAX_SCAN_AGE="0")
    expected_events = scenario.expected_events(now)

    with ConsumerProcess(env) as proc:
        wait_fully_committed(kafka_bootstrap, env["KAFKA_GROUP_ID"], topic, [proc])
        wait_for_rule_calls(sandbox, expected_events, scenario)
        assert proc.stop() == 0

    statuses, events = received(sandbox.calls(status_code=200))
    assert events == expected_events, explain(
        (events - expected_events) + (expected_events - events), scenario
    )
    assert statuses == scenario.expected_statuses()

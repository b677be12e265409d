"""A rules file with per-carrier thresholds changes which shipments the running consumer flags."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devkit.consumer_process import ConsumerProcess, wait_fully_committed
from devkit.sandbox import SandboxControl
from devkit.scenarios import (
    Scenario,
    explain,
    produce_in_order,
    received,
    steady_shipment,
    wait_for_rule_calls,
)

pytestmark = pytest.mark.broker

Env = Callable[..., dict[str, str]]

# Carrier names in the file are matched case-insensitively against the scans' "FASTCO"/"SLOWCO".
RULES = """\
defaults:
  stall_in_transit: 48h
carriers:
  fastco:
    stall_in_transit: 12h
  SlowCo:
    stall_in_transit: 100h
"""
THRESHOLDS = {"FASTCO": 12, "UPS": 48, "SLOWCO": 100}  # hours, as the file says
GAPS = (24, 60)  # hours between scans; each is at least 12 h away from every threshold


def test_per_carrier_thresholds_decide_which_shipments_are_flagged(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    sandbox: SandboxControl,
    consumer_env: Env,
    tmp_path: Path,
) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES)
    now = datetime.now(UTC)
    first_start = (now - timedelta(days=25)).replace(microsecond=0)
    shipments = []
    for number in range(120):
        carrier = sorted(THRESHOLDS)[number % 3]
        gap = GAPS[number // 3 % 2]
        shipments.append(
            steady_shipment(
                f"{carrier.lower()}-{gap}h-{number:03d}",
                carrier=carrier,
                start=first_start + timedelta(hours=number * 1.5),
                gap=timedelta(hours=gap),
                in_transit_scans=3,
                stall_in_transit=timedelta(hours=THRESHOLDS[carrier]),
            )
        )
    scenario = Scenario(tuple(shipments))
    topic = new_topic(partitions=3)
    produce_in_order(kafka_bootstrap, topic, scenario.records())
    expected = scenario.expected_events(now)
    flagged_ids = {fulfillment_id for fulfillment_id, _, _ in expected}
    # The file matters: with the built-in 72 h, 24 h and 60 h gaps would flag no one.
    assert flagged_ids == {
        s.fulfillment_id
        for s in shipments
        if s.fulfillment_id.startswith("fastco-") or s.fulfillment_id.startswith("ups-60h")
    }
    env = consumer_env(topic, MAX_SCAN_AGE="0", RULES_FILE=str(rules_file))

    with ConsumerProcess(env) as proc:
        wait_fully_committed(kafka_bootstrap, env["KAFKA_GROUP_ID"], topic, [proc])
        wait_for_rule_calls(sandbox, expected, scenario)
        assert proc.stop() == 0

    statuses, events = received(sandbox.calls(status_code=200))
    assert {fulfillment_id for fulfillment_id, _, _ in events} == flagged_ids, explain(
        events.keys() ^ expected.keys(), scenario
    )
    assert events == expected, explain((events - expected) + (expected - events), scenario)
    assert statuses == scenario.expected_statuses()

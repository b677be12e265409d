"""The reliability suite's scenarios a to d at CI size (``python -m reliability --short``): a
regression that loses or reorders a Redo call under member kills, broker kills, a Redo outage
or rebalance churn fails here; the full run and its table stay in ``make reliability``.

The scenarios kill the broker, so they run on a LocalKafka of their own, not the session's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devkit.broker import LocalKafka
from reliability import report
from reliability.cluster import Redo
from reliability.faults import SHORT
from reliability.run import RunSettings, environment, run_scenario

pytestmark = pytest.mark.broker

SETTINGS = RunSettings(shipments=300, pace_s=25, scale=SHORT, settle_timeout_s=240)


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[LocalKafka, Redo]]:
    with environment(SETTINGS.latency_ms) as pair:
        yield pair


@pytest.mark.parametrize("scenario", ["a", "b", "c", "d"])
def test_no_call_is_lost_or_reordered(scenario: str, cluster: tuple[LocalKafka, Redo]) -> None:
    kafka, redo = cluster
    row = run_scenario(scenario, kafka, redo, SETTINGS)
    print(report.table([row]))
    assert row.error is None, row.error
    assert row.verdict.passed, report.problems([row])

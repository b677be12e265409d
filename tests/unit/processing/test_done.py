"""Done: final outcomes mark offsets done and count the metric; nothing else does."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY

from consumer.outcome import Outcome
from consumer.processing.done import Done
from tests.unit.processing.fakes import partition_work


def _done_count(outcome: str) -> float:
    value = REGISTRY.get_sample_value("tracking_records_done_total", {"outcome": outcome})
    return value or 0.0


def test_the_outcome_labels_are_the_dashboards_strings() -> None:
    assert [str(o) for o in Outcome] == [
        "sent",
        "no_call",
        "dead_lettered",
        "duplicate",
        "stale",
        "out_of_order",
        "expired",
        "timers",
        "rewritten",
        "abandoned",
    ]


def test_a_final_outcome_marks_the_offset_done_and_counts_its_label() -> None:
    work = partition_work()
    work.register(0)
    before = _done_count("out_of_order")
    Done().mark(work, 0, Outcome.OUT_OF_ORDER)
    assert work.committable == 1
    assert _done_count("out_of_order") == before + 1


def test_abandoned_work_and_work_without_a_record_mark_nothing() -> None:
    work = partition_work()
    work.register(0)
    before = _done_count("timers")
    done = Done()
    done.mark(work, 0, Outcome.ABANDONED)
    done.mark(work, None, Outcome.TIMERS)
    assert work.committable is None
    assert _done_count("timers") == before
    assert _done_count("abandoned") == 0


def test_an_unexpected_failure_is_counted_for_healthz(caplog: pytest.LogCaptureFixture) -> None:
    done = Done()
    before = REGISTRY.get_sample_value("tracking_unexpected_failures_total") or 0.0
    with caplog.at_level(logging.ERROR):
        try:
            raise RuntimeError("bug")
        except RuntimeError:
            done.failed_unexpectedly("a job", partition_work())
    assert done.unexpected_failures == 1
    assert REGISTRY.get_sample_value("tracking_unexpected_failures_total") == before + 1
    assert "a job failed unexpectedly" in caplog.text

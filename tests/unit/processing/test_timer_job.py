"""TimerJob: a shipment's due timers fired, sent and persisted; expiry only once committed."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from consumer.kafka.offsets import PartitionWork
from consumer.outcome import Outcome
from consumer.processing import timer_job as timer_job_module
from consumer.processing.timer_job import TimerJob
from consumer.rules import RulesConfig, Thresholds, process_scan
from consumer.state.store import PartitionStore
from tests.unit.processing.fakes import NOW, Chain, partition_work, scan

STALLED = NOW + timedelta(days=4)
SHORT_LIVED = RulesConfig(defaults=Thresholds(expire_after_last_scan=timedelta(minutes=1)))


def _setup(rules: RulesConfig, offset: int = 5) -> tuple[Chain, TimerJob, PartitionStore]:
    chain = Chain()
    store = PartitionStore(rules)
    event = scan("f1", NOW - timedelta(hours=1))
    store.put("f1", process_scan(None, event, clock=NOW, config=rules, forward="all").state, offset)
    return chain, TimerJob(rules, chain.deliver, chain.persist, chain.dead_letter), store


def _fire(job: TimerJob, store: PartitionStore, clock: datetime, work: PartitionWork) -> Outcome:
    return asyncio.run(job.run(work, store, "f1", clock))


def test_a_stall_is_reported_and_the_marked_state_persisted() -> None:
    chain, job, store = _setup(RulesConfig())
    assert _fire(job, store, STALLED, partition_work()) is Outcome.TIMERS
    assert [status for status, _, _ in chain.deliverer.seen] == ["stalled_in_transit"]
    assert [w.key for w in chain.states()] == [b"f1"]
    assert _fire(job, store, STALLED, partition_work()) is Outcome.TIMERS
    assert len(chain.deliverer.seen) == 1, "a fired timer does not fire again"
    assert len(chain.states()) == 1, "nothing fired: nothing to persist"


def test_a_shipment_without_state_has_no_call() -> None:
    _, job, store = _setup(RulesConfig())
    store.discard("f1")
    assert _fire(job, store, STALLED, partition_work()) is Outcome.NO_CALL


def test_an_expired_shipment_whose_records_are_committed_is_tombstoned() -> None:
    chain, job, store = _setup(SHORT_LIVED, offset=5)
    work = partition_work()
    work.committed = 6
    assert _fire(job, store, NOW + timedelta(minutes=5), work) is Outcome.EXPIRED
    assert "f1" not in store
    assert [w.value for w in chain.states()] == [None]


def test_an_expired_shipment_not_yet_committed_is_looked_at_again_a_minute_later() -> None:
    chain, job, store = _setup(SHORT_LIVED, offset=5)
    work = partition_work()
    work.committed = 5
    clock = NOW + timedelta(minutes=5)
    assert _fire(job, store, clock, work) is Outcome.TIMERS
    assert "f1" in store and chain.states() == []
    assert store.due(clock + timedelta(seconds=30)) == []
    assert store.due(clock + timedelta(minutes=2)) == ["f1"]


def test_an_abandoned_call_leaves_the_timer_undone() -> None:
    chain, job, store = _setup(RulesConfig())
    chain.deliverer.answers["stalled_in_transit"] = Outcome.ABANDONED
    assert _fire(job, store, STALLED, partition_work()) is Outcome.ABANDONED
    assert chain.states() == []


def test_a_failure_restores_the_state_unscheduled_and_dead_letters_the_timer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chain, job, store = _setup(RulesConfig())
    before = store.get("f1")

    def broken(*_args: object, **_kwargs: object) -> None:
        raise ValueError("timers broke")

    monkeypatch.setattr(timer_job_module, "fire_timers", broken)
    assert _fire(job, store, STALLED, partition_work()) is Outcome.DEAD_LETTERED
    assert store.get("f1") == before
    assert store.due(STALLED + timedelta(days=400)) == [], "not failing again every tick"
    [letter] = chain.dead_letters()
    assert letter.key == b"f1" and letter.headers["dlq.source.offset"] == b"-1"
    assert letter.headers["dlq.error"] == b"ValueError: timers broke"

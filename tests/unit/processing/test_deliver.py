"""Deliver: a transition's calls in order, each to a final outcome, the first one revocable."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from consumer.model import CallKind, RedoCall
from consumer.outcome import Outcome
from consumer.processing.settings import ProcessingSettings
from consumer.rules import RulesConfig
from tests.unit.processing.fakes import NOW, Chain, call, partition_work, raw

AGED = ProcessingSettings(RulesConfig(), "all", timedelta(hours=1), timedelta(minutes=5), 100)


def _deliver(chain: Chain, calls: list[RedoCall]) -> tuple[Outcome, list[RedoCall]]:
    work, sent = partition_work(), list[RedoCall]()
    record = raw(work, 0, b"f1", b"x")
    outcome = asyncio.run(chain.deliver.calls(work, record, calls, sent))
    return outcome, sent


def test_calls_go_out_in_order_and_every_one_after_the_first_is_a_follow_up() -> None:
    chain = Chain()
    calls = [call("in_transit"), call("delayed", kind=CallKind.EVENT)]
    outcome, sent = _deliver(chain, calls)
    assert outcome is Outcome.SENT
    assert sent == calls
    assert [(status, follow_up) for status, follow_up, _ in chain.deliverer.seen] == [
        ("in_transit", False),
        ("delayed", True),
    ]


def test_no_calls_is_no_call() -> None:
    assert _deliver(Chain(), []) == (Outcome.NO_CALL, [])


def test_calls_older_than_max_scan_age_are_not_sent() -> None:
    chain = Chain(settings=AGED)
    old = call("in_transit", at=NOW - timedelta(hours=2))
    assert _deliver(chain, [old]) == (Outcome.STALE, [])
    assert chain.deliverer.seen == []
    fresh = call("delivered", at=NOW)
    assert _deliver(chain, [old, fresh]) == (Outcome.SENT, [fresh])


def test_a_refused_call_is_dead_lettered_and_the_rest_still_go_out() -> None:
    chain = Chain()
    chain.deliverer.answers["in_transit"] = Outcome.DEAD_LETTERED
    calls = [call("in_transit"), call("delayed", kind=CallKind.EVENT)]
    outcome, sent = _deliver(chain, calls)
    assert outcome is Outcome.DEAD_LETTERED
    assert sent == calls[1:]
    assert chain.reasons() == ["redo_400"]


def test_an_abandoned_call_abandons_the_transition() -> None:
    chain = Chain()
    chain.deliverer.answers["delayed"] = Outcome.ABANDONED
    calls = [call("in_transit"), call("delayed"), call("delivered")]
    outcome, sent = _deliver(chain, calls)
    assert outcome is Outcome.ABANDONED
    assert sent == calls[:1], "the sent list says which calls Redo has"
    assert len(chain.deliverer.seen) == 2


def test_a_revoke_abandons_only_the_first_call_later_ones_wait_for_the_drain() -> None:
    chain, work = Chain(), partition_work()
    work.revoked = True
    record = raw(work, 0, b"f1", b"x")
    asyncio.run(chain.deliver.calls(work, record, [call("a"), call("b")], []))
    assert [abandoned for _, _, abandoned in chain.deliverer.seen] == [True, False]
    work.given_up = True
    chain.deliverer.seen.clear()
    asyncio.run(chain.deliver.calls(work, record, [call("a"), call("b")], []))
    assert [abandoned for _, _, abandoned in chain.deliverer.seen] == [True, True]

"""Persist: states and tombstones on the changelog, and the rewrites of attach."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from consumer.outcome import Outcome
from consumer.rules import RulesConfig, process_scan
from consumer.state.changelog import OFFSET_HEADER
from consumer.state.codec import decode_state
from consumer.state.store import PartitionStore
from tests.unit.processing.fakes import NOW, REFUSED, Chain, fail_times, partition_work, scan


def _store_with(fulfillment: str, offset: int) -> PartitionStore:
    store = PartitionStore(RulesConfig())
    event = scan(fulfillment, NOW - timedelta(hours=1))
    state = process_scan(None, event, clock=NOW, config=RulesConfig(), forward="all").state
    store.put(fulfillment, state, offset)
    return store


def test_a_state_is_written_keyed_by_its_shipment_with_its_offset() -> None:
    chain, store = Chain(), _store_with("f1", 7)
    state = store.get("f1")
    assert asyncio.run(chain.persist.state(partition_work(3), "f1", state, 7))
    [written] = chain.states()
    assert (written.key, written.partition) == (b"f1", 3)
    assert written.headers[OFFSET_HEADER] == b"7"
    assert written.value is not None and decode_state(written.value).fulfillment_id == "f1"


def test_a_refused_write_is_retried_and_given_up_on_revoke() -> None:
    chain = Chain()
    chain.producer.fail = fail_times(2)
    assert asyncio.run(chain.persist.state(partition_work(), "f1", None, 1))
    assert [w.value for w in chain.states()] == [None]

    work = partition_work()
    work.revoked = True
    chain.producer.fail = fail_times(1, REFUSED)
    assert not asyncio.run(chain.persist.state(work, "f2", None, 1))


def test_rewrites_write_the_restored_state_or_tombstone_again() -> None:
    chain, store, work = Chain(), _store_with("f1", 4), partition_work()
    assert asyncio.run(chain.persist.rewrite(work, store, "f1")) is Outcome.REWRITTEN
    assert asyncio.run(chain.persist.rewrite(work, store, "gone")) is Outcome.NO_CALL
    assert asyncio.run(chain.persist.rewrite_tombstone(work, "f2", 9)) is Outcome.REWRITTEN
    assert [(w.key, w.headers[OFFSET_HEADER], w.value is None) for w in chain.states()] == [
        (b"f1", b"4", False),
        (b"f2", b"9", True),
    ]


def test_a_rewrite_given_up_on_revoke_is_abandoned() -> None:
    chain, store, work = Chain(), _store_with("f1", 4), partition_work()
    work.revoked = True
    chain.producer.fail = fail_times(1)
    assert asyncio.run(chain.persist.rewrite(work, store, "f1")) is Outcome.ABANDONED

"""Partitions: a restored partition's store, its rewrites queued, revoked ones ignored."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from consumer.processing import partitions as partitions_module
from consumer.processing.partitions import Partitions
from consumer.rules import RulesConfig, process_scan
from consumer.state.packed import RestoredStates
from tests.unit.processing.fakes import NOW, Chain, partition_work, scan, until


def _partitions(chain: Chain) -> Partitions:
    return Partitions(RulesConfig(), chain.persist, chain.jobs, chain.done)


def _restored(*fulfillments: str) -> RestoredStates:
    states = {
        fid: process_scan(
            None,
            scan(fid, NOW - timedelta(hours=1)),
            clock=NOW,
            config=RulesConfig(),
            forward="all",
        ).state
        for fid in fulfillments
    }
    return RestoredStates.of(states, offset=3)


def test_attach_builds_the_store_and_writes_fenced_states_and_tombstones_again() -> None:
    async def run() -> Chain:
        chain = Chain()
        partitions, work = _partitions(chain), partition_work()
        restored = _restored("f1", "f2")
        restored.rewrite = ["f1"]
        restored.rewrite_tombstones = {"gone": 8}
        partitions.attach(work, restored)
        assert set(partitions.stores[work]) == {"f1", "f2"}
        assert REGISTRY.get_sample_value("tracking_shipments_in_state") == 2
        await until(lambda: len(chain.states()) == 2)
        return chain

    chain = asyncio.run(run())
    assert sorted((w.key, w.value is None) for w in chain.states()) == [
        (b"f1", False),
        (b"gone", True),
    ]


def test_a_partition_revoked_before_its_restore_finished_is_not_attached() -> None:
    partitions, work = _partitions(Chain()), partition_work()
    work.revoked = True
    partitions.attach(work, _restored("f1"))
    assert partitions.stores == {}


def test_detach_forgets_the_partitions_state() -> None:
    partitions, kept, gone = _partitions(Chain()), partition_work(0), partition_work(1)
    partitions.attach(kept, _restored("f1"))
    partitions.attach(gone, _restored("f2", "f3"))
    partitions.detach([gone])
    assert list(partitions.stores) == [kept]
    assert REGISTRY.get_sample_value("tracking_shipments_in_state") == 1


def test_a_store_that_cannot_be_built_is_an_unexpected_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("bug in the store")

    monkeypatch.setattr(partitions_module, "PartitionStore", broken)
    chain = Chain()
    partitions = _partitions(chain)
    partitions.attach(partition_work(), RestoredStates())
    assert partitions.stores == {} and chain.done.unexpected_failures == 1

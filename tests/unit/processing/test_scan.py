"""Scan: rules on the shipment's state, its calls, its new state; any failure costs the record."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from consumer.model import ShipmentStatus
from consumer.outcome import Outcome
from consumer.processing import scan as scan_module
from consumer.processing.scan import Scan
from consumer.rules import RulesConfig
from consumer.state.store import PartitionStore
from tests.unit.processing.fakes import NOW, SETTINGS, Chain, partition_work, scan, scan_record

FIRST = scan("f1", NOW - timedelta(hours=3))


def _run(chain: Chain, store: PartitionStore, *events: object) -> list[Outcome]:
    stage = Scan(SETTINGS, chain.deliver, chain.persist, chain.dead_letter)
    work = partition_work()

    async def run() -> list[Outcome]:
        return [
            await stage.run(scan_record(work, offset, event), store, event, NOW)  # type: ignore[arg-type]
            for offset, event in enumerate(events)
        ]

    return asyncio.run(run())


def test_a_scan_sends_its_call_then_persists_its_state_then_is_due_later() -> None:
    chain, store = Chain(), PartitionStore(RulesConfig())
    assert _run(chain, store, FIRST) == [Outcome.SENT]
    assert [status for status, _, _ in chain.deliverer.seen] == ["in_transit"]
    assert [w.key for w in chain.states()] == [b"f1"]
    assert store.offset_of("f1") == 0
    assert store.due(NOW + timedelta(days=30)) == ["f1"], "scheduled after it was persisted"


def test_a_repeated_event_is_a_duplicate_and_sends_and_writes_nothing_more() -> None:
    chain, store = Chain(), PartitionStore(RulesConfig())
    assert _run(chain, store, FIRST, FIRST) == [Outcome.SENT, Outcome.DUPLICATE]
    assert len(chain.deliverer.seen) == 1 and len(chain.states()) == 1
    assert store.offset_of("f1") == 1, "the duplicate's offset counts against expiry"


def test_an_older_scan_after_a_newer_one_is_out_of_order() -> None:
    chain, store = Chain(), PartitionStore(RulesConfig())
    older = replace(FIRST, event_id="e0", occurred_at=FIRST.occurred_at - timedelta(hours=1))
    assert _run(chain, store, FIRST, older)[1] is Outcome.OUT_OF_ORDER


def test_an_abandoned_delivery_persists_nothing() -> None:
    chain, store = Chain(), PartitionStore(RulesConfig())
    chain.deliverer.answers["in_transit"] = Outcome.ABANDONED
    assert _run(chain, store, FIRST) == [Outcome.ABANDONED]
    assert chain.states() == []


def test_a_failure_before_any_call_puts_the_state_back_and_dead_letters_the_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chain, store = Chain(), PartitionStore(RulesConfig())
    _run(chain, store, FIRST)
    before = store.get("f1")

    def broken(*_args: object, **_kwargs: object) -> None:
        raise ZeroDivisionError("the rules broke")

    monkeypatch.setattr(scan_module, "process_scan", broken)
    delivered = replace(FIRST, event_id="e2", status=ShipmentStatus.DELIVERED)
    assert _run(chain, store, delivered) == [Outcome.DEAD_LETTERED]
    assert store.get("f1") == before and store.offset_of("f1") == 0
    assert chain.reasons() == ["processing_error"]
    assert chain.dead_letters()[0].headers["dlq.error"] == b"ZeroDivisionError: the rules broke"


def test_a_failure_after_a_call_went_out_keeps_the_new_state() -> None:
    chain, store = Chain(), PartitionStore(RulesConfig())

    def states_break(topic: str, _value: bytes | None) -> None:
        if topic == "tracking.state":
            raise RuntimeError("the state encoder broke")

    chain.producer.fail = states_break
    delivered = replace(FIRST, status=ShipmentStatus.DELIVERED)
    assert _run(chain, store, delivered) == [Outcome.DEAD_LETTERED]
    state = store.get("f1")
    assert state is not None and state.terminal_at is not None, "Redo was told: delivered"

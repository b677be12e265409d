"""Snapshot: a shipment's state put back as it was before a failed job."""

from __future__ import annotations

from datetime import timedelta

from consumer.processing.snapshot import Snapshot
from consumer.rules import RulesConfig, ShipmentState, process_scan
from consumer.state.store import PartitionStore
from tests.unit.processing.fakes import NOW, scan


def _state(status_event_id: str = "e1") -> ShipmentState:
    event = scan("f1", NOW - timedelta(days=10), event_id=status_event_id)
    return process_scan(None, event, clock=NOW, config=RulesConfig(), forward="all").state


def test_the_state_and_offset_before_come_back_and_are_scheduled_again() -> None:
    store = PartitionStore(RulesConfig())
    before = _state()
    store.put("f1", before, 3)
    snapshot = Snapshot.of(store, "f1")
    store.put("f1", _state("e2"), 9)
    snapshot.restore(store)
    assert store.get("f1") == before and store.offset_of("f1") == 3
    assert store.due(NOW + timedelta(days=400)) == ["f1"]


def test_without_reschedule_the_restored_state_is_not_due() -> None:
    store = PartitionStore(RulesConfig())
    store.put("f1", _state(), 3)
    snapshot = Snapshot.of(store, "f1")
    snapshot.restore(store, reschedule=False)
    assert store.get("f1") is not None
    assert store.due(NOW + timedelta(days=400)) == []


def test_a_shipment_that_had_no_state_is_forgotten_again() -> None:
    store = PartitionStore(RulesConfig())
    snapshot = Snapshot.of(store, "f1")
    store.put("f1", _state(), 3)
    snapshot.restore(store)
    assert "f1" not in store

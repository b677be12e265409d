"""Restoring a changelog partition: the newest state per shipment wins, late writes of a former
owner are fenced off and rewritten, broken records are set aside, and deadline hints are only
trusted from the same rules (``consumer.state.changelog._Replay`` fed records in log order)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from consumer.model import ShipmentStatus
from consumer.rules import RulesConfig, ShipmentState, Thresholds
from consumer.state.changelog import OFFSET_HEADER, _Replay
from consumer.state.codec import DeadlineHint, encode_state
from consumer.state.packed import UNSCHEDULED, RestoredStates, pack_record
from consumer.state.store import PartitionStore
from consumer.state.timers import deadline_us, rules_tag

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CONFIG = RulesConfig()
TAG = rules_tag(CONFIG)


def in_transit(fulfillment_id: str, last_scan_at: datetime = T0) -> ShipmentState:
    return ShipmentState(
        fulfillment_id,
        "store",
        "order",
        last_scan_at=last_scan_at,
        carrier="UPS",
        last_status=ShipmentStatus.IN_TRANSIT,
    )


@dataclass
class Message:
    """What ``_Replay`` reads of a confluent-kafka message."""

    _value: bytes | None
    _offset: int | None
    _position: int = 0

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes]] | None:
        return None if self._offset is None else [(OFFSET_HEADER, str(self._offset).encode())]

    def offset(self) -> int:
        return self._position


def hinted(state: ShipmentState, config: RulesConfig = CONFIG) -> bytes:
    return encode_state(state, DeadlineHint(rules_tag(config), deadline_us(state, config)))


def replay(*records: tuple[str, bytes | None, int | None], tag: int = TAG) -> RestoredStates:
    restored = RestoredStates(rules_tag=tag)
    replayer = _Replay(restored)
    for position, (fulfillment_id, value, offset) in enumerate(records):
        replayer.apply(fulfillment_id, Message(value, offset, position))
    replayer.finish()
    return restored


def test_the_state_with_the_newest_input_offset_wins_and_a_late_older_write_is_rewritten() -> None:
    newer, older = in_transit("a", T0 + timedelta(hours=5)), in_transit("a", T0)
    restored = replay(("a", hinted(newer), 20), ("a", hinted(older), 10))
    store = PartitionStore(CONFIG, restored)
    assert store.get("a") == newer
    assert store.offset_of("a") == 20
    assert restored.rewrite == ["a"]


def test_on_a_tie_the_later_record_wins_and_nothing_needs_rewriting() -> None:
    first, second = in_transit("a", T0), in_transit("a", T0 + timedelta(hours=1))
    restored = replay(("a", hinted(first), 7), ("a", hinted(second), 7))
    assert PartitionStore(CONFIG, restored).get("a") == second
    assert restored.rewrite == []


def test_a_tombstone_carries_its_offset_and_fences_off_older_states() -> None:
    restored = replay(
        ("a", hinted(in_transit("a")), 5), ("a", None, 9), ("a", hinted(in_transit("a")), 8)
    )
    store = PartitionStore(CONFIG, restored)
    assert "a" not in store
    assert restored.rewrite == []  # nothing left to rewrite: the tombstone is the newest


def test_a_state_newer_than_its_tombstone_brings_the_shipment_back() -> None:
    restored = replay(("a", None, 9), ("a", hinted(in_transit("a")), 12))
    assert PartitionStore(CONFIG, restored).offset_of("a") == 12


def test_a_record_without_an_offset_header_counts_as_the_oldest() -> None:
    restored = replay(("a", hinted(in_transit("a")), 3), ("a", hinted(in_transit("b")), None))
    assert PartitionStore(CONFIG, restored).get("a") == in_transit("a")


def test_unreadable_records_are_quarantined_and_the_rest_restored() -> None:
    good = hinted(in_transit("a"))
    restored = replay(
        ("a", good, 1),
        ("b", good[:-1] + b"!", 2),  # fails its CRC
        ("c", b"\x63garbage", 3),  # a format this version does not know
    )
    store = PartitionStore(CONFIG, restored)
    assert list(store) == ["a"]
    assert restored.quarantined == 2
    assert store.quarantined == 2


def test_hinted_shipments_are_scheduled_without_decoding_and_fire_on_time() -> None:
    restored = replay(("a", hinted(in_transit("a")), 1))
    assert restored.unscheduled == []
    store = PartitionStore(CONFIG, restored)
    stall = T0 + timedelta(hours=72)
    assert store.due(stall) == []
    assert store.due(stall + timedelta(seconds=1)) == ["a"]


def test_a_hint_from_other_rules_is_recomputed_with_these() -> None:
    other = RulesConfig(defaults=Thresholds(stall_in_transit=timedelta(hours=500)))
    restored = replay(("a", hinted(in_transit("a"), other), 1))
    assert restored.unscheduled == ["a"]
    store = PartitionStore(CONFIG, restored)
    assert store.due(T0 + timedelta(hours=72, seconds=1)) == ["a"]


def test_a_store_with_other_rules_than_the_restore_reschedules_everything() -> None:
    fast = RulesConfig(defaults=Thresholds(stall_in_transit=timedelta(hours=1)))
    store = PartitionStore(fast, replay(("a", hinted(in_transit("a")), 1)))
    assert store.due(T0 + timedelta(hours=1, seconds=1)) == ["a"]


def test_a_format_1_record_is_restored_and_scheduled() -> None:
    huge = replace(in_transit("a"), order_id="o" * 40_000)  # written as format 1
    restored = replay(("a", encode_state(huge), 4))
    store = PartitionStore(CONFIG, restored)
    assert store.get("a") == huge
    assert store.due(T0 + timedelta(hours=72, seconds=1)) == ["a"]


def test_a_state_at_the_calendars_edge_is_restored_and_scheduled() -> None:
    edge = in_transit("a", datetime(9999, 12, 31, tzinfo=UTC))
    store = PartitionStore(CONFIG, replay(("a", encode_state(edge), 1)))
    assert store.get("a") == edge
    assert store.quarantined == 0
    assert store.due(datetime(9999, 12, 30, tzinfo=UTC)) == []


def test_a_record_the_store_cannot_read_is_quarantined_not_fatal() -> None:
    restored = RestoredStates(
        {
            "a": pack_record(1, UNSCHEDULED, b"\x02garbage"),
            "b": pack_record(2, UNSCHEDULED, hinted(in_transit("b"))),
        },
        unscheduled=["a", "b"],
        rules_tag=TAG,
    )
    store = PartitionStore(CONFIG, restored)
    assert list(store) == ["b"]
    assert store.quarantined == 1

"""PartitionStore: the partition clock and the timer heap the pipeline fires rules from."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from consumer.model import ShipmentStatus
from consumer.rules import RulesConfig, ShipmentState, Thresholds
from consumer.state.packed import RestoredStates
from consumer.state.store import HOT_STATES, PartitionStore

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
CONFIG = RulesConfig()


def in_transit(fulfillment_id: str, last_scan_at: datetime) -> ShipmentState:
    return ShipmentState(
        fulfillment_id,
        "store",
        "order",
        last_scan_at=last_scan_at,
        carrier="UPS",
        last_status=ShipmentStatus.IN_TRANSIT,
    )


def test_a_restored_partition_clock_starts_from_the_replay_not_from_the_restored_states() -> None:
    """The changelog runs ahead of the committed offsets (shipments progress in parallel), so
    the newest restored scan can be days past the records about to be replayed. A clock seeded
    from it would fire the timers of every shipment whose next scans are still to be replayed:
    flagged merely because the previous owner was behind on other shipments."""
    restored = {"a": in_transit("a", T0), "b": in_transit("b", T0 + timedelta(days=5))}
    store = PartitionStore(CONFIG, RestoredStates.of(restored))
    assert store.clock(T0 + timedelta(days=30), caught_up=False) is None
    replayed = T0 + timedelta(hours=20)  # the first uncommitted record: "a" scanned in time
    store.observe(replayed)
    clock = store.clock(T0 + timedelta(days=30), caught_up=False)
    assert clock == replayed
    assert store.due(clock) == []


def test_stream_time_only_moves_forward() -> None:
    store = PartitionStore(CONFIG, RestoredStates.of({}))
    store.observe(T0)
    store.observe(T0 - timedelta(days=2))
    assert store.stream_time == T0
    store.observe(T0 + SECOND)
    assert store.stream_time == T0 + SECOND


def test_clock_is_stream_time_while_catching_up_and_the_wall_clock_once_caught_up() -> None:
    store = PartitionStore(CONFIG, RestoredStates.of({}))
    wall = T0 + timedelta(days=30)
    assert store.clock(wall, caught_up=False) is None
    assert store.clock(wall, caught_up=True) == wall
    store.observe(T0)
    assert store.clock(wall, caught_up=False) == T0
    assert store.clock(wall, caught_up=True) == wall
    ahead = wall + timedelta(hours=1)  # a carrier whose clock runs ahead of ours
    store.observe(ahead)
    assert store.clock(wall, caught_up=True) == ahead


def test_a_timer_is_due_only_once_the_clock_is_strictly_past_its_deadline() -> None:
    store = PartitionStore(CONFIG, RestoredStates.of({"a": in_transit("a", T0)}))
    deadline = T0 + timedelta(hours=72)
    assert store.due(deadline) == []
    assert store.due(deadline + SECOND) == ["a"]


def test_due_unschedules_until_schedule_is_called_again() -> None:
    store = PartitionStore(CONFIG, RestoredStates.of({"a": in_transit("a", T0)}))
    late = T0 + timedelta(days=4)
    assert store.due(late) == ["a"]
    assert store.due(late) == []
    store.schedule("a")
    assert store.due(late) == ["a"]


def test_due_returns_shipments_in_deadline_order_and_leaves_later_ones() -> None:
    states = {
        "later": in_transit("later", T0 + timedelta(hours=10)),
        "first": in_transit("first", T0),
        "never": in_transit("never", T0 + timedelta(days=2)),
    }
    store = PartitionStore(CONFIG, RestoredStates.of(states))
    assert store.due(T0 + timedelta(hours=83)) == ["first", "later"]
    assert store.due(T0 + timedelta(days=5, hours=1)) == ["never"]


def test_per_carrier_thresholds_set_the_deadline() -> None:
    config = RulesConfig(carriers={"FastCo": Thresholds(stall_in_transit=timedelta(hours=12))})
    states = {
        "fast": replace(in_transit("fast", T0), carrier="FASTCO"),
        "slow": in_transit("slow", T0),
    }
    store = PartitionStore(config, RestoredStates.of(states))
    assert store.due(T0 + timedelta(hours=12) + SECOND) == ["fast"]
    assert store.due(T0 + timedelta(hours=72) + SECOND) == ["slow"]


def test_a_terminal_shipment_wakes_only_to_expire() -> None:
    delivered = ShipmentState(
        "a",
        "store",
        "order",
        last_scan_at=T0,
        last_status=ShipmentStatus.DELIVERED,
        terminal_at=T0,
    )
    store = PartitionStore(CONFIG, RestoredStates.of({"a": delivered}))
    expiry = T0 + timedelta(days=7)
    assert store.due(expiry) == []
    assert not store.expired("a", expiry - SECOND)
    assert store.expired("a", expiry)
    assert store.due(expiry + SECOND) == ["a"]


def test_a_silent_shipment_expires_after_its_last_scan() -> None:
    quiet = ShipmentState("a", "store", "order", last_scan_at=T0)  # no status: no rule timer
    store = PartitionStore(CONFIG, RestoredStates.of({"a": quiet}))
    assert store.due(T0 + timedelta(days=30)) == []
    assert store.due(T0 + timedelta(days=30) + SECOND) == ["a"]


def test_a_removed_shipment_is_unscheduled_and_never_expired() -> None:
    store = PartitionStore(CONFIG, RestoredStates.of({"a": in_transit("a", T0)}))
    store.discard("a")
    store.schedule("a")
    assert store.due(T0 + timedelta(days=60)) == []
    assert not store.expired("a", T0 + timedelta(days=60))


def test_an_earlier_deadline_replaces_a_later_one() -> None:
    store = PartitionStore(
        CONFIG, RestoredStates.of({"a": in_transit("a", T0 + timedelta(days=1))})
    )
    store.put("a", in_transit("a", T0), 0)
    store.schedule("a")
    assert store.due(T0 + timedelta(hours=72) + SECOND) == ["a"]
    assert store.due(T0 + timedelta(days=5)) == []


def test_states_survive_leaving_the_decoded_cache() -> None:
    store = PartitionStore(CONFIG)
    states = {f"f{n}": in_transit(f"f{n}", T0 + n * SECOND) for n in range(HOT_STATES * 2)}
    for number, (fulfillment_id, state) in enumerate(states.items()):
        store.put(fulfillment_id, state, number)
    assert all(store.get(fid) == state for fid, state in states.items())
    assert [store.offset_of(fid) for fid in states] == list(range(len(states)))


def test_an_offset_never_goes_back() -> None:
    store = PartitionStore(CONFIG)
    store.put("a", in_transit("a", T0), 10)
    store.put("a", in_transit("a", T0 + SECOND), 4)
    assert store.offset_of("a") == 10
    assert store.get("a") == in_transit("a", T0 + SECOND)


def test_timers_far_apart_fire_in_deadline_order_however_they_were_scheduled() -> None:
    starts = [T0 + timedelta(minutes=37 * n) for n in (5, 0, 90, 3, 3, 41, 200, 1)]
    store = PartitionStore(CONFIG)
    for number, start in enumerate(starts):
        store.put(f"f{number}", in_transit(f"f{number}", start), number)
        store.schedule(f"f{number}")
    fired = []
    clock = T0 + timedelta(hours=72)
    while len(fired) < len(starts):
        clock += timedelta(minutes=13)
        fired += store.due(clock)
    order = sorted(range(len(starts)), key=lambda n: (starts[n], n))
    assert fired == [f"f{n}" for n in order]


def test_a_postponed_deadline_fires_no_earlier_than_asked() -> None:
    store = PartitionStore(CONFIG, RestoredStates.of({"a": in_transit("a", T0)}))
    stall = T0 + timedelta(hours=72)
    assert store.due(stall + SECOND) == ["a"]
    store.schedule("a", not_before=stall + timedelta(minutes=5))
    assert store.due(stall + timedelta(minutes=5)) == []
    assert store.due(stall + timedelta(minutes=5, seconds=1)) == ["a"]

"""Each rule of docs/design.md §3 to §6 and its edges, on the pure engine."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from consumer.model import (
    AutomationEvent,
    CallKind,
    Location,
    RedoCall,
    ShipmentStatus,
    TrackingEvent,
)
from consumer.rules import (
    ForwardPolicy,
    RulesConfig,
    ShipmentState,
    Thresholds,
    Verdict,
    apply_scan,
    expires_at,
    fire_timers,
    is_stale,
    load_rules,
    next_deadline,
    process_scan,
)

BASE = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
DEFAULTS = RulesConfig()
IN_TRANSIT = ShipmentStatus.IN_TRANSIT
ONE_SECOND = timedelta(seconds=1)


def at(hours: float) -> datetime:
    return BASE + timedelta(hours=hours)


def scan(
    event_id: str,
    hours: float,
    status: ShipmentStatus = IN_TRANSIT,
    *,
    eta: date | None = None,
    carrier: str | None = "UPS",
    fulfillment_id: str = "ful-1",
) -> TrackingEvent:
    return TrackingEvent(
        event_id=event_id,
        store_id="store-1",
        order_id="order-1",
        fulfillment_id=fulfillment_id,
        status=status,
        occurred_at=at(hours),
        carrier=carrier,
        tracking_number="1Z999",
        message=f"scan {event_id}",
        location=Location(city="Memphis", state="TN", country="US"),
        estimated_delivery_date=eta,
    )


def run(
    *events: TrackingEvent,
    config: RulesConfig = DEFAULTS,
    forward: ForwardPolicy = "all",
) -> tuple[ShipmentState, list[RedoCall]]:
    """Apply scans in order (no timers) and collect every call."""
    state: ShipmentState | None = None
    calls: list[RedoCall] = []
    for event in events:
        result = apply_scan(state, event, config=config, forward=forward)
        state = result.state
        calls.extend(result.calls)
    assert state is not None
    return state, calls


def statuses(calls: list[RedoCall] | tuple[RedoCall, ...]) -> list[str]:
    return [call.status for call in calls]


# --- scans and status calls ---------------------------------------------------------------------


def test_first_scan_creates_state_and_a_status_call() -> None:
    event = scan("e1", 0, eta=date(2024, 5, 4))
    result = apply_scan(None, event, config=DEFAULTS, forward="all")
    assert result.verdict is Verdict.APPLIED
    assert result.calls == (
        RedoCall(
            kind=CallKind.STATUS,
            store_id="store-1",
            order_id="order-1",
            fulfillment_id="ful-1",
            status="in_transit",
            at=at(0),
            message="scan e1",
            location=Location(city="Memphis", state="TN", country="US"),
            estimated_delivery_date=date(2024, 5, 4),
        ),
    )
    state = result.state
    assert (state.fulfillment_id, state.store_id, state.order_id) == ("ful-1", "store-1", "order-1")
    assert state.carrier == "UPS"
    assert state.last_scan_at == at(0)
    assert state.last_status is IN_TRANSIT
    assert state.last_status_sent is IN_TRANSIT
    assert state.current_eta == state.reference_eta == date(2024, 5, 4)
    assert state.recent_event_ids == ("e1",)
    assert not state.terminal


def test_status_call_carries_the_last_known_eta_when_the_scan_has_none() -> None:
    _, calls = run(scan("e1", 0, eta=date(2024, 5, 4)), scan("e2", 1))
    assert calls[1].estimated_delivery_date == date(2024, 5, 4)


def test_unknown_scan_is_activity_without_a_status_call() -> None:
    state, calls = run(
        scan("e1", 0), scan("e2", 5, ShipmentStatus.UNKNOWN, eta=date(2024, 5, 9), carrier=None)
    )
    assert statuses(calls) == ["in_transit"]
    assert state.last_status is IN_TRANSIT
    assert state.last_scan_at == at(5)
    assert state.current_eta == date(2024, 5, 9)
    assert state.carrier == "UPS"


def test_forward_all_sends_every_scan() -> None:
    _, calls = run(scan("e1", 0), scan("e2", 1), scan("e3", 2), forward="all")
    assert [call.at for call in calls] == [at(0), at(1), at(2)]


def test_forward_changes_sends_only_status_changes() -> None:
    _, calls = run(
        scan("e1", 0),
        scan("e2", 1),
        scan("e3", 2, ShipmentStatus.OUT_FOR_DELIVERY),
        scan("e4", 3, ShipmentStatus.OUT_FOR_DELIVERY),
        scan("e5", 4, ShipmentStatus.DELIVERED),
        forward="changes",
    )
    assert statuses(calls) == ["in_transit", "out_for_delivery", "delivered"]
    assert [call.at for call in calls] == [at(0), at(2), at(4)]


def test_a_repeated_event_id_is_dropped() -> None:
    state, _ = run(scan("e1", 0), scan("e2", 5))
    result = apply_scan(
        state, scan("e1", 9, ShipmentStatus.DELIVERED), config=DEFAULTS, forward="all"
    )
    assert result.verdict is Verdict.DUPLICATE
    assert result.calls == ()
    assert result.state is state


def test_an_out_of_order_scan_is_skipped_but_remembered() -> None:
    state, _ = run(
        scan("e1", 0, eta=date(2024, 5, 4)), scan("e2", 10, ShipmentStatus.OUT_FOR_DELIVERY)
    )
    late = scan("e3", 5, IN_TRANSIT, eta=date(2024, 5, 9))
    result = apply_scan(state, late, config=DEFAULTS, forward="all")
    assert result.verdict is Verdict.OUT_OF_ORDER
    assert result.calls == ()
    assert result.state == replace(state, recent_event_ids=("e1", "e2", "e3"))
    again = apply_scan(result.state, late, config=DEFAULTS, forward="all")
    assert again.verdict is Verdict.DUPLICATE


def test_an_out_of_order_terminal_scan_still_silences_the_rules() -> None:
    state, _ = run(scan("e1", 0, eta=date(2024, 5, 4)), scan("e2", 10))
    assert next_deadline(state, DEFAULTS) is not None
    result = apply_scan(
        state, scan("e3", 9, ShipmentStatus.DELIVERED), config=DEFAULTS, forward="all"
    )
    assert result.verdict is Verdict.OUT_OF_ORDER
    assert result.calls == ()
    assert result.state.last_status is IN_TRANSIT
    assert result.state.terminal_at == at(9)
    assert next_deadline(result.state, DEFAULTS) is None
    assert fire_timers(result.state, clock=at(1000), config=DEFAULTS).calls == ()


# --- stalled_in_transit -------------------------------------------------------------------------


def test_stall_fires_once_strictly_after_the_threshold() -> None:
    state, _ = run(scan("e1", 0))
    deadline = at(72)
    assert next_deadline(state, DEFAULTS) == deadline
    assert fire_timers(state, clock=deadline, config=DEFAULTS).calls == ()

    fired = fire_timers(state, clock=deadline + ONE_SECOND, config=DEFAULTS)
    assert fired.calls == (
        RedoCall(
            kind=CallKind.EVENT,
            store_id="store-1",
            order_id="order-1",
            fulfillment_id="ful-1",
            status=AutomationEvent.STALLED_IN_TRANSIT.value,
            at=deadline,
            message=(
                "No carrier scan for more than 72 h while in_transit "
                "(last scan 2024-05-01T10:00:00Z)"
            ),
        ),
    )
    assert fired.state.stall_notified
    assert fired.state.last_status is IN_TRANSIT
    assert next_deadline(fired.state, DEFAULTS) is None
    assert fire_timers(fired.state, clock=at(500), config=DEFAULTS).calls == ()


def test_the_next_scan_ends_the_stall_episode() -> None:
    state, _ = run(scan("e1", 0))
    state = fire_timers(state, clock=at(80), config=DEFAULTS).state
    state = apply_scan(state, scan("e2", 90), config=DEFAULTS, forward="all").state
    assert not state.stall_notified
    assert next_deadline(state, DEFAULTS) == at(90 + 72)
    assert statuses(fire_timers(state, clock=at(163), config=DEFAULTS).calls) == [
        "stalled_in_transit"
    ]


def test_a_scan_at_the_same_instant_does_not_start_a_new_episode() -> None:
    state, _ = run(scan("e1", 0))
    state = fire_timers(state, clock=at(80), config=DEFAULTS).state
    result = apply_scan(state, scan("e2", 0), config=DEFAULTS, forward="all")
    assert result.verdict is Verdict.APPLIED
    assert result.state.stall_notified
    assert fire_timers(result.state, clock=at(200), config=DEFAULTS).calls == ()


def test_out_for_delivery_stalls_after_24_hours() -> None:
    state, _ = run(scan("e1", 0, ShipmentStatus.OUT_FOR_DELIVERY))
    assert next_deadline(state, DEFAULTS) == at(24)
    calls = fire_timers(state, clock=at(25), config=DEFAULTS).calls
    assert [call.message for call in calls] == [
        "No carrier scan for more than 24 h while out_for_delivery (last scan 2024-05-01T10:00:00Z)"
    ]


@pytest.mark.parametrize(
    "status",
    [
        ShipmentStatus.PRE_TRANSIT,
        ShipmentStatus.AVAILABLE_FOR_PICKUP,
        ShipmentStatus.FAILURE,
        ShipmentStatus.ERROR,
        ShipmentStatus.UNKNOWN,
    ],
)
def test_other_statuses_never_stall(status: ShipmentStatus) -> None:
    state, _ = run(scan("e1", 0, status))
    assert next_deadline(state, DEFAULTS) is None
    assert fire_timers(state, clock=at(1000), config=DEFAULTS).calls == ()


def test_process_scan_fires_timers_due_before_the_scan_first() -> None:
    state, _ = run(scan("e1", 0))
    result = process_scan(state, scan("e2", 73), clock=at(73), config=DEFAULTS, forward="all")
    assert result.verdict is Verdict.APPLIED
    assert statuses(result.calls) == ["stalled_in_transit", "in_transit"]
    assert [call.at for call in result.calls] == [at(72), at(73)]
    assert not result.state.stall_notified


def test_process_scan_at_exactly_the_threshold_is_not_a_stall() -> None:
    state, _ = run(scan("e1", 0))
    result = process_scan(state, scan("e2", 72), clock=at(72), config=DEFAULTS, forward="all")
    assert statuses(result.calls) == ["in_transit"]


def test_a_scan_processed_late_is_applied_before_the_clock_catches_up() -> None:
    """The consumer being behind must not flag a shipment whose scan came in time."""
    state, _ = run(scan("e1", 0))
    result = process_scan(state, scan("e2", 71), clock=at(100), config=DEFAULTS, forward="all")
    assert statuses(result.calls) == ["in_transit"]
    assert next_deadline(result.state, DEFAULTS) == at(71 + 72)


def test_process_scan_fires_after_the_scan_what_the_scan_made_due() -> None:
    result = process_scan(
        None, scan("e1", 0, eta=date(2024, 4, 29)), clock=at(0), config=DEFAULTS, forward="all"
    )
    assert statuses(result.calls) == ["in_transit", "delayed"]
    assert result.calls[1].at == datetime(2024, 4, 30, tzinfo=UTC)


# --- delayed and arriving_early on ETA changes --------------------------------------------------


def test_the_first_eta_becomes_the_reference_without_a_call() -> None:
    state, calls = run(scan("e1", 0), scan("e2", 1, eta=date(2024, 5, 4)))
    assert state.reference_eta == date(2024, 5, 4)
    assert statuses(calls) == ["in_transit", "in_transit"]


def test_a_later_eta_is_delayed_once_per_value_and_moves_the_reference() -> None:
    state, calls = run(
        scan("e1", 0, eta=date(2024, 5, 4)),
        scan("e2", 1, eta=date(2024, 5, 5)),
        scan("e3", 2, eta=date(2024, 5, 5)),
        scan("e4", 3, eta=date(2024, 5, 6)),
    )
    events = [call for call in calls if call.kind is CallKind.EVENT]
    assert [(c.status, c.at, c.estimated_delivery_date) for c in events] == [
        ("delayed", at(1), date(2024, 5, 5)),
        ("delayed", at(3), date(2024, 5, 6)),
    ]
    assert (
        events[0].message == "Estimated delivery moved from 2024-05-04 to 2024-05-05, 1 day later"
    )
    assert state.reference_eta == date(2024, 5, 6)
    assert state.notified_delayed == (date(2024, 5, 5), date(2024, 5, 6))


def test_status_call_precedes_the_event_call_of_the_same_scan() -> None:
    _, calls = run(scan("e1", 0, eta=date(2024, 5, 4)), scan("e2", 1, eta=date(2024, 5, 7)))
    assert [(c.kind, c.status) for c in calls[1:]] == [
        (CallKind.STATUS, "in_transit"),
        (CallKind.EVENT, "delayed"),
    ]
    assert (
        calls[2].message == "Estimated delivery moved from 2024-05-04 to 2024-05-07, 3 days later"
    )


def test_small_drifts_accumulate_against_the_reference() -> None:
    config = RulesConfig(defaults=Thresholds(delay_min_days=2))
    state, calls = run(
        scan("e1", 0, eta=date(2024, 5, 4)),
        scan("e2", 1, eta=date(2024, 5, 5)),
        scan("e3", 2, eta=date(2024, 5, 6)),
        config=config,
    )
    assert [(c.status, c.at) for c in calls if c.kind is CallKind.EVENT] == [("delayed", at(2))]
    assert state.reference_eta == date(2024, 5, 6)


def test_an_earlier_eta_is_arriving_early_once_per_value() -> None:
    state, calls = run(
        scan("e1", 0, eta=date(2024, 5, 6)),
        scan("e2", 1, eta=date(2024, 5, 4)),
        scan("e3", 2, eta=date(2024, 5, 6)),
        scan("e4", 3, eta=date(2024, 5, 4)),
    )
    events = [
        (c.status, c.at, c.estimated_delivery_date) for c in calls if c.kind is CallKind.EVENT
    ]
    assert events == [
        ("arriving_early", at(1), date(2024, 5, 4)),
        ("delayed", at(2), date(2024, 5, 6)),
    ]
    assert state.notified_early == (date(2024, 5, 4),)


def test_an_eta_back_to_an_already_reported_value_is_silent() -> None:
    _, calls = run(
        scan("e1", 0, eta=date(2024, 5, 4)),
        scan("e2", 1, eta=date(2024, 5, 5)),
        scan("e3", 2, eta=date(2024, 5, 4)),
        scan("e4", 3, eta=date(2024, 5, 5)),
    )
    assert statuses([c for c in calls if c.kind is CallKind.EVENT]) == ["delayed", "arriving_early"]


def test_no_eta_event_on_the_delivering_scan() -> None:
    _, calls = run(
        scan("e1", 0, eta=date(2024, 5, 6)),
        scan("e2", 1, ShipmentStatus.DELIVERED, eta=date(2024, 5, 1)),
    )
    assert statuses(calls) == ["in_transit", "delivered"]


# --- delayed when the ETA day passes ------------------------------------------------------------


def test_delayed_when_the_eta_day_has_passed() -> None:
    state, _ = run(scan("e1", 0, ShipmentStatus.PRE_TRANSIT, eta=date(2024, 5, 2)))
    end_of_day = datetime(2024, 5, 3, tzinfo=UTC)
    assert next_deadline(state, DEFAULTS) == end_of_day
    assert fire_timers(state, clock=end_of_day, config=DEFAULTS).calls == ()
    fired = fire_timers(state, clock=end_of_day + ONE_SECOND, config=DEFAULTS)
    assert [(c.status, c.at, c.estimated_delivery_date, c.message) for c in fired.calls] == [
        (
            "delayed",
            end_of_day,
            date(2024, 5, 2),
            "Estimated delivery date 2024-05-02 has passed without delivery "
            "(last status pre_transit)",
        )
    ]
    assert fire_timers(fired.state, clock=at(1000), config=DEFAULTS).calls == ()


def test_eta_grace_postpones_the_passed_eta_deadline() -> None:
    config = RulesConfig(defaults=Thresholds(eta_grace=timedelta(hours=6)))
    state, _ = run(scan("e1", 0, ShipmentStatus.PRE_TRANSIT, eta=date(2024, 5, 2)), config=config)
    assert next_deadline(state, config) == datetime(2024, 5, 3, 6, tzinfo=UTC)


def test_a_new_eta_gets_its_own_passed_deadline() -> None:
    state, _ = run(scan("e1", 0, ShipmentStatus.PRE_TRANSIT, eta=date(2024, 5, 2)))
    state = fire_timers(state, clock=datetime(2024, 5, 3, 1, tzinfo=UTC), config=DEFAULTS).state
    result = apply_scan(
        state,
        scan("e2", 60, ShipmentStatus.PRE_TRANSIT, eta=date(2024, 5, 5)),
        config=DEFAULTS,
        forward="all",
    )
    assert statuses(result.calls) == ["pre_transit", "delayed"]
    assert next_deadline(result.state, DEFAULTS) is None  # 2024-05-05 was reported delayed already


def test_an_eta_reported_early_is_still_delayed_when_its_day_passes() -> None:
    state, _ = run(
        scan("e1", 0, ShipmentStatus.PRE_TRANSIT, eta=date(2024, 5, 6)),
        scan("e2", 1, ShipmentStatus.PRE_TRANSIT, eta=date(2024, 5, 3)),
    )
    assert next_deadline(state, DEFAULTS) == datetime(2024, 5, 4, tzinfo=UTC)


def test_stall_and_passed_eta_fire_in_deadline_order() -> None:
    state, _ = run(scan("e1", 0, eta=date(2024, 5, 2)))
    calls = fire_timers(state, clock=at(1000), config=DEFAULTS).calls
    assert [(c.status, c.at) for c in calls] == [
        ("delayed", datetime(2024, 5, 3, tzinfo=UTC)),
        ("stalled_in_transit", at(72)),
    ]


# --- terminal statuses --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "terminal",
    [ShipmentStatus.DELIVERED, ShipmentStatus.RETURN_TO_SENDER, ShipmentStatus.CANCELLED],
)
def test_a_terminal_status_silences_every_rule(terminal: ShipmentStatus) -> None:
    state, _ = run(scan("e1", 0, eta=date(2024, 5, 2)), scan("e2", 1, terminal))
    assert state.terminal
    assert state.terminal_at == at(1)
    assert next_deadline(state, DEFAULTS) is None
    assert fire_timers(state, clock=at(1000), config=DEFAULTS).calls == ()


def test_scans_after_a_terminal_status_are_forwarded_without_events() -> None:
    state, calls = run(
        scan("e1", 0, eta=date(2024, 5, 2)),
        scan("e2", 1, ShipmentStatus.DELIVERED),
        scan("e3", 2, IN_TRANSIT, eta=date(2024, 5, 9)),
    )
    assert statuses(calls) == ["in_transit", "delivered", "in_transit"]
    assert state.terminal
    assert next_deadline(state, DEFAULTS) is None


# --- expiry and stale news ----------------------------------------------------------------------


def test_state_expires_after_the_last_scan_or_sooner_after_a_terminal_status() -> None:
    moving, _ = run(scan("e1", 0))
    assert expires_at(moving, DEFAULTS) == at(0) + timedelta(days=30)
    delivered, _ = run(scan("e1", 0), scan("e2", 5, ShipmentStatus.DELIVERED))
    assert expires_at(delivered, DEFAULTS) == at(5) + timedelta(days=7)


@pytest.mark.parametrize(
    ("age", "max_age", "stale"),
    [
        (timedelta(days=8), timedelta(days=7), True),
        (timedelta(days=7), timedelta(days=7), False),
        (timedelta(days=1), timedelta(days=7), False),
        (timedelta(days=400), timedelta(0), False),
    ],
)
def test_is_stale(age: timedelta, max_age: timedelta, stale: bool) -> None:
    call = RedoCall(
        kind=CallKind.STATUS, store_id="s", order_id="o", fulfillment_id="f", status="x", at=BASE
    )
    assert is_stale(call, now=BASE + age, max_age=max_age) is stale


# --- per-carrier thresholds from a rules file ---------------------------------------------------


def test_a_rules_file_changes_which_shipments_are_flagged(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "carriers:\n  ups: {stall_in_transit: 48h}\n  DHL: {delay_min_days: 3}\n", encoding="utf-8"
    )
    config = load_rules(path)

    def stalled_at_50h(carrier: str, rules: RulesConfig) -> bool:
        state, _ = run(scan("e1", 0, carrier=carrier), config=rules)
        return bool(fire_timers(state, clock=at(50), config=rules).calls)

    assert stalled_at_50h("UPS", config)
    assert not stalled_at_50h("FedEx", config)
    assert not stalled_at_50h("UPS", DEFAULTS)

    def delayed_by_two_days(carrier: str, rules: RulesConfig) -> bool:
        _, calls = run(
            scan("e1", 0, carrier=carrier, eta=date(2024, 5, 4)),
            scan("e2", 1, carrier=carrier, eta=date(2024, 5, 6)),
            config=rules,
        )
        return any(call.kind is CallKind.EVENT for call in calls)

    assert not delayed_by_two_days("DHL", config)
    assert delayed_by_two_days("UPS", config)

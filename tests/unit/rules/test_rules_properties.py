"""Properties of the rules engine over arbitrary scan sequences of one shipment (hypothesis).

A sequence mixes statuses, ETAs, carriers, gaps that cross every threshold, scans older than the
last one, and exact replays of earlier scans. A ``Scenario`` drives the engine the way the
consumer does: each scan through ``process_scan`` with the stream time as the partition clock,
timer-wheel ticks between scans when run live, and one last ``fire_timers`` at an end clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.model import (
    TERMINAL_STATUSES,
    AutomationEvent,
    CallKind,
    RedoCall,
    ShipmentStatus,
    TrackingEvent,
)
from consumer.rules import (
    ForwardPolicy,
    RulesConfig,
    ScanTransition,
    ShipmentState,
    Thresholds,
    Transition,
    Verdict,
    fire_timers,
    next_deadline,
    process_scan,
)

BASE = datetime(2024, 5, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)

CONFIGS = [
    RulesConfig(),
    RulesConfig(
        defaults=Thresholds(
            stall_in_transit=timedelta(hours=30),
            stall_out_for_delivery=timedelta(hours=10),
            eta_grace=timedelta(hours=6),
        ),
        carriers={"UPS": Thresholds(stall_in_transit=timedelta(hours=48), delay_min_days=2)},
    ),
]
# Moving statuses are over-represented so that stalls happen often enough to matter.
STATUSES = (
    [ShipmentStatus.IN_TRANSIT] * 6 + [ShipmentStatus.OUT_FOR_DELIVERY] * 3 + list(ShipmentStatus)
)

Steps = list[tuple[TrackingEvent | None, Transition]]


@st.composite
def scan_sequences(draw: st.DrawFn) -> list[TrackingEvent]:
    """Up to 20 scans: mostly forward in time, some older than the previous one, some replays."""
    scans: list[TrackingEvent] = []
    hours = 0
    for index in range(draw(st.integers(1, 20))):
        if scans and draw(st.integers(0, 4)) == 0:
            scans.append(draw(st.sampled_from(scans)))
            continue
        hours = max(0, hours + draw(st.integers(-48, 96)))
        eta_days = draw(st.none() | st.integers(0, 15))
        scans.append(
            TrackingEvent(
                event_id=f"e{index}",
                store_id="store-1",
                order_id="order-1",
                fulfillment_id="ful-1",
                status=draw(st.sampled_from(STATUSES)),
                occurred_at=BASE + hours * HOUR,
                carrier=draw(st.sampled_from(["UPS", "ups", "FedEx", None])),
                message=f"scan {index}",
                estimated_delivery_date=None
                if eta_days is None
                else BASE.date() + timedelta(days=eta_days),
            )
        )
    return scans


def stream_times(scans: Sequence[TrackingEvent]) -> list[datetime]:
    """The partition clock after each scan while catching up: the largest event time so far."""
    times: list[datetime] = []
    for event in scans:
        times.append(max(times[-1], event.occurred_at) if times else event.occurred_at)
    return times


@dataclass(frozen=True)
class Scenario:
    """One shipment's scans, the rules, and the clocks of a live timer wheel between scans.

    ``ticks[k]`` are clocks fired before scan k (``ticks[len(scans)]``: before the end), each
    between the stream times around it: a live wheel ticks as time passes, never ahead of a scan
    that has not happened yet.
    """

    scans: list[TrackingEvent]
    config: RulesConfig
    forward: ForwardPolicy
    end: datetime
    ticks: list[list[datetime]]

    def backlog(self, scans: Sequence[TrackingEvent] | None = None) -> tuple[Steps, ShipmentState]:
        """A replay that jumps the clock: timers fire only at scans and at the end."""
        return self._run(self.scans if scans is None else scans, ())

    def live(self) -> tuple[Steps, ShipmentState]:
        """The same scans with the timer wheel also ticking in between."""
        return self._run(self.scans, self.ticks)

    def _run(
        self, scans: Sequence[TrackingEvent], ticks: Sequence[Sequence[datetime]]
    ) -> tuple[Steps, ShipmentState]:
        state: ShipmentState | None = None
        steps: Steps = []
        for index, (event, clock) in enumerate(zip(scans, stream_times(scans), strict=True)):
            if state is not None and ticks:
                state = self._tick(state, ticks[index], steps)
            result = process_scan(
                state, event, clock=clock, config=self.config, forward=self.forward
            )
            steps.append((event, result))
            state = result.state
        assert state is not None
        state = self._tick(state, [*(ticks[-1] if ticks else ()), self.end], steps)
        return steps, state

    def _tick(
        self, state: ShipmentState, clocks: Sequence[datetime], steps: Steps
    ) -> ShipmentState:
        for clock in clocks:
            fired = fire_timers(state, clock=clock, config=self.config)
            steps.append((None, fired))
            state = fired.state
        return state


def gap_ticks(low: datetime, high: datetime) -> st.SearchStrategy[list[datetime]]:
    """Up to 4 clocks in [low, high], on whole minutes so that deadlines are hit exactly too."""
    minutes = int((high - low) / timedelta(minutes=1))
    offsets = st.lists(st.integers(0, minutes) | st.sampled_from([0, minutes]), max_size=4)
    return offsets.map(lambda values: [low + timedelta(minutes=m) for m in sorted(values)])


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    scans = draw(scan_sequences())
    times = stream_times(scans)
    end = times[-1] + draw(st.integers(0, 30 * 24)) * HOUR
    bounds = [times[0], *times, end]
    return Scenario(
        scans=scans,
        config=draw(st.sampled_from(CONFIGS)),
        forward=draw(st.sampled_from(["all", "changes"])),
        end=end,
        ticks=[draw(gap_ticks(low, high)) for low, high in pairwise(bounds)],
    )


def all_calls(steps: Steps) -> list[RedoCall]:
    return [call for _, transition in steps for call in transition.calls]


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_at_most_one_stall_per_stall_episode(case: Scenario) -> None:
    for steps, final in (case.backlog(), case.live()):
        # An episode starts at each applied scan; a stall belongs to the latest start before its
        # detection time (its deadline).
        starts = {
            transition.state.last_scan_at
            for _, transition in steps
            if isinstance(transition, ScanTransition) and transition.verdict is Verdict.APPLIED
        }
        stalls = [c for c in all_calls(steps) if c.status == AutomationEvent.STALLED_IN_TRANSIT]
        episodes = [max(start for start in starts if start < call.at) for call in stalls]
        assert len(episodes) == len(set(episodes)), stalls

        threshold = case.config.for_carrier(final.carrier).stall_threshold(final.last_status)
        if (
            not final.terminal
            and threshold is not None
            and case.end > final.last_scan_at + threshold
        ):
            assert final.last_scan_at in episodes, "the last episode's stall never fired"


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_no_event_call_after_a_terminal_status(case: Scenario) -> None:
    for steps, _ in (case.backlog(), case.live()):
        terminal_seen = False
        for event, transition in steps:
            events = [call for call in transition.calls if call.kind is CallKind.EVENT]
            if terminal_seen:
                assert events == [], events
            elif event is not None and event.status in TERMINAL_STATUSES:
                # Only the timers that fired before the scan was applied may precede it.
                assert all(call.at < event.occurred_at for call in events), events
                terminal_seen = True


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_feeding_every_scan_twice_makes_no_extra_call(case: Scenario) -> None:
    once, state_once = case.backlog()
    each_twice = [event for event in case.scans for _ in range(2)]
    doubled, state_doubled = case.backlog(each_twice)
    replayed, state_replayed = case.backlog([*case.scans, *case.scans])
    assert all_calls(doubled) == all_calls(once)
    assert all_calls(replayed) == all_calls(once)
    assert state_doubled == state_once == state_replayed


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_live_and_backlog_replay_make_the_same_calls(case: Scenario) -> None:
    """Detection times are the rules' own deadlines, so ticking in small steps or jumping the
    clock produces the same calls in the same order, and the same final state."""
    backlog, backlog_state = case.backlog()
    live, live_state = case.live()
    assert all_calls(live) == all_calls(backlog)
    assert live_state == backlog_state


@settings(max_examples=60, deadline=None)
@given(scenarios(), st.data())
def test_next_deadline_says_exactly_when_timers_fire(case: Scenario, data: st.DataObject) -> None:
    steps, _ = case.live()
    for _, transition in steps:
        state = transition.state
        deadline = next_deadline(state, case.config)
        around = state.last_scan_at if deadline is None else deadline
        offset = data.draw(st.sampled_from([-60, -1, 0, 1, 60]) | st.integers(-5000, 5000))
        clock = around + timedelta(minutes=offset)
        fired = fire_timers(state, clock=clock, config=case.config)
        assert bool(fired.calls) == (deadline is not None and clock > deadline)
        assert fire_timers(fired.state, clock=clock, config=case.config).calls == ()


@settings(max_examples=60, deadline=None)
@given(scenarios())
def test_status_never_moves_backwards(case: Scenario) -> None:
    steps, _ = case.backlog()
    status_times = [call.at for call in all_calls(steps) if call.kind is CallKind.STATUS]
    assert status_times == sorted(status_times)
    last_scan_times = [transition.state.last_scan_at for _, transition in steps]
    assert last_scan_times == sorted(last_scan_times)
    for event, transition in steps:
        if event is not None and event.occurred_at < transition.state.last_scan_at:
            assert isinstance(transition, ScanTransition)
            assert transition.verdict is not Verdict.APPLIED

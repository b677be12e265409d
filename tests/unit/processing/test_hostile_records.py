"""Hostile and extreme records through the real pipeline (in memory): each costs at most itself.

Every field is pushed to its most extreme legal value — dates in year 1 and 9999, epoch 0 and
before it, huge and control-character strings, IDs with ``/``, ``?``, ``#``, ``%``, spaces and
non-ASCII — and the record must become valid Redo calls or a dead letter with a reason, its
offset must be done, and nothing may escape from the pipeline.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.model import Location, ShipmentStatus, TrackingEvent
from consumer.processing import scan as scan_module
from consumer.rules import RulesConfig, Thresholds
from consumer.serde.fields import MAX_ID_LENGTH
from consumer.state.codec import decode_state
from tests.support.memory_pipeline import MemoryPipeline

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=400)
"""The wall clock the timers are fired at afterwards: every stall and passed ETA is due."""

_EDGE_TIMES = st.sampled_from(
    [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
        NOW,
        NOW + timedelta(minutes=4),  # inside MAX_CLOCK_SKEW
        NOW + timedelta(hours=1),  # beyond it
        datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
    ]
)
_ANY_TIME = st.datetimes(
    min_value=datetime(1, 1, 1),
    max_value=datetime(9999, 12, 31, 23, 59, 59),
    timezones=st.just(UTC),
).map(lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000))
_DATES = st.one_of(
    st.none(), st.sampled_from([date.min, date(1970, 1, 1), NOW.date(), date.max]), st.dates()
)
_TRICKY = st.sampled_from(
    ["a/b", "a?b=1", "#frag", "100%", "%2F", " spaced ", "Ünïcødé", "日本", "\u202e", "\x00\x1f"]
)
_TEXT = st.one_of(
    st.none(),
    st.text(max_size=50),
    _TRICKY,
    st.sampled_from(["", "x" * 200_000, "\n\t\r\x7f" * 1000]),
)
_IDS = st.one_of(_TRICKY, st.text(min_size=1, max_size=20), st.sampled_from(["x" * 300, "ok"]))


@st.composite
def hostile_events(draw: st.DrawFn) -> list[TrackingEvent]:
    """A few shipments with several scans each, every field drawn from its extremes."""
    fulfillments = draw(st.lists(_IDS, min_size=1, max_size=3, unique=True))
    events = []
    for number in range(draw(st.integers(min_value=1, max_value=8))):
        location = draw(
            st.none()
            | st.builds(Location, city=_TEXT, state=_TEXT, country=_TEXT, postal_code=_TEXT)
        )
        events.append(
            TrackingEvent(
                event_id=draw(st.one_of(_IDS, st.just(f"evt-{number}"))),
                store_id=draw(_IDS),
                order_id=draw(_IDS),
                fulfillment_id=draw(st.sampled_from(fulfillments)),
                status=draw(st.sampled_from(ShipmentStatus)),
                occurred_at=draw(st.one_of(_EDGE_TIMES, _ANY_TIME)),
                carrier=draw(_TEXT),
                tracking_number=draw(_TEXT),
                message=draw(_TEXT),
                location=location,
                estimated_delivery_date=draw(_DATES),
            )
        )
    return events


class _ErrorLog(logging.Handler):
    """Every ERROR logged while one example runs (a caught-and-logged escape counts too)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def _run(memory: MemoryPipeline, events: list[TrackingEvent]) -> MemoryPipeline:
    """Feed ``events`` to one partition, then fire every timer at ``LATER`` on the wall clock."""
    work = memory.assign()
    memory.processor.accept([memory.event_record(work, event) for event in events])
    await memory.settle(work)
    memory.processor.set_caught_up(work, True)
    memory.now = LATER
    memory.processor.tick()
    await memory.settle(work)
    await memory.processor.close()
    return memory


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(events=hostile_events(), eta_grace=st.sampled_from([timedelta(0), timedelta(days=3650)]))
def test_every_extreme_record_becomes_valid_calls_or_a_dead_letter(
    events: list[TrackingEvent], eta_grace: timedelta
) -> None:
    rules = RulesConfig(defaults=Thresholds(eta_grace=eta_grace))
    errors = _ErrorLog()
    logging.getLogger().addHandler(errors)
    try:
        memory = asyncio.run(_run(MemoryPipeline(NOW, rules=rules), events))
    finally:
        logging.getLogger().removeHandler(errors)

    assert not memory.sender.invalid, memory.sender.invalid
    assert not errors.messages, f"errors escaped the pipeline: {errors.messages}"
    reasons = memory.dead_letter_reasons()
    assert set(reasons.values()) <= {"decode", "future_event_time"}, reasons
    for offset, event in enumerate(events):
        ids = (event.event_id, event.store_id, event.order_id, event.fulfillment_id)
        if any(not value.strip() or len(value) > MAX_ID_LENGTH for value in ids):
            assert reasons.get(offset) == "decode", (offset, ids)
        elif event.occurred_at > NOW + timedelta(minutes=5):
            assert reasons.get(offset) == "future_event_time", (offset, event.occurred_at)
        else:
            assert offset not in reasons, (offset, reasons[offset])
    for written in memory.states():
        if written.value is not None:
            assert decode_state(written.value).fulfillment_id == written.key.decode()  # type: ignore[union-attr]


def test_a_failing_record_is_dead_lettered_and_leaves_its_state_and_partition_intact(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug (here: the rules raising for one shipment) costs that record only: it is
    dead-lettered with the error, the shipment keeps its previous state, and the records after
    it, of that shipment and of others, are processed and done."""
    real = scan_module.process_scan  # type: ignore[attr-defined]

    def fails_for_the_second_scan(state, event, **kwargs):  # type: ignore[no-untyped-def]
        if event.event_id == "bad":
            raise ZeroDivisionError("the rules broke")
        return real(state, event, **kwargs)

    monkeypatch.setattr(scan_module, "process_scan", fails_for_the_second_scan)
    first = TrackingEvent("e1", "s", "o", "f1", ShipmentStatus.IN_TRANSIT, NOW - timedelta(hours=3))
    bad = replace(first, event_id="bad", status=ShipmentStatus.DELIVERED, occurred_at=NOW)
    after = replace(first, event_id="e3", occurred_at=NOW - timedelta(hours=1))
    other = replace(first, event_id="e4", fulfillment_id="f2")

    async def run() -> MemoryPipeline:
        memory = MemoryPipeline(NOW)
        work = memory.assign()
        memory.processor.accept([memory.event_record(work, e) for e in (first, bad, after, other)])
        await memory.settle(work)
        assert work.committable == 4, "every record, the failed one included, is done"
        await memory.processor.close()
        return memory

    memory = asyncio.run(run())
    assert memory.dead_letter_reasons() == {1: "processing_error"}
    error = memory.dead_letters()[0].headers["dlq.error"].decode()
    assert error == "ZeroDivisionError: the rules broke"
    assert sorted((c.fulfillment_id, c.status) for c in memory.sender.calls) == [
        ("f1", "in_transit"),
        ("f1", "in_transit"),
        ("f2", "in_transit"),
    ]
    f1_states = [decode_state(w.value) for w in memory.states() if w.key == b"f1" and w.value]
    assert all(state.terminal_at is None for state in f1_states), "the failed scan left no trace"


def test_a_scan_from_the_future_is_dead_lettered_and_does_not_move_the_clock() -> None:
    """One scan dated a year ahead, on a partition of shipments scanned an hour ago: it is
    dead-lettered with its own reason, and no other shipment is reported stalled or late."""
    recent = [
        TrackingEvent(
            f"e{n}",
            "s",
            "o",
            f"f{n}",
            ShipmentStatus.IN_TRANSIT,
            NOW - timedelta(hours=1),
            estimated_delivery_date=NOW.date(),
        )
        for n in range(5)
    ]
    future = replace(recent[0], event_id="future", fulfillment_id="f-future")
    future = replace(future, occurred_at=NOW + timedelta(days=365))

    async def run() -> MemoryPipeline:
        memory = MemoryPipeline(NOW)
        work = memory.assign()
        memory.processor.accept(
            [memory.event_record(work, e) for e in [*recent[:2], future, *recent[2:]]]
        )
        await memory.settle(work)
        memory.processor.set_caught_up(work, True)
        memory.processor.tick()
        await memory.settle(work)
        await memory.processor.close()
        return memory

    memory = asyncio.run(run())
    assert memory.dead_letter_reasons() == {2: "future_event_time"}
    assert sorted(c.status for c in memory.sender.calls) == ["in_transit"] * 5


def test_a_failure_after_a_call_went_out_keeps_the_new_state() -> None:
    """The "delivered" call got its 2xx, then writing the state failed with something no retry
    covers: the record is dead-lettered, and the shipment stays delivered in memory, so no
    stall or passed-ETA call can follow for a parcel the customer was told is delivered."""
    scan = TrackingEvent(
        "e1",
        "s",
        "o",
        "f1",
        ShipmentStatus.IN_TRANSIT,
        NOW - timedelta(days=5),
        estimated_delivery_date=(NOW - timedelta(days=2)).date(),
    )
    delivered = replace(
        scan, event_id="e2", status=ShipmentStatus.DELIVERED, occurred_at=NOW - timedelta(days=4)
    )

    def state_writes_break_after_the_first(topic: str, value: bytes | None) -> None:
        if topic == "tracking.state" and memory.states():
            raise RuntimeError("the state encoder broke")

    memory = MemoryPipeline(NOW)
    memory.producer.fail = state_writes_break_after_the_first
    asyncio.run(_run(memory, [scan, delivered]))
    assert memory.dead_letter_reasons() == {1: "processing_error"}
    assert [c.status for c in memory.sender.calls] == ["in_transit", "delivered"]


def test_a_failure_no_contained_path_catches_fails_liveness_and_commits_nothing() -> None:
    """The dead letter of a failing record cannot be written either (a bug, not a broker
    refusal): the record stays undone and the pipeline counts it, which fails /healthz."""

    def everything_breaks(topic: str, value: bytes | None) -> None:
        raise RuntimeError(f"writing to {topic} broke")

    memory = MemoryPipeline(NOW)
    memory.producer.fail = everything_breaks

    async def run() -> int | None:
        work = memory.assign()
        memory.processor.accept([memory.record(work, b"\xff", b"f1")])
        deadline = asyncio.get_running_loop().time() + 10
        while not memory.processor.unexpected_failures:
            assert asyncio.get_running_loop().time() < deadline, "the failure went unnoticed"
            await asyncio.sleep(0.01)
        await memory.processor.close()
        return work.committable

    assert asyncio.run(run()) is None, "a record without its dead letter must not be done"
    assert memory.processor.unexpected_failures == 1

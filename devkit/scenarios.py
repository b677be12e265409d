"""Labelled backlog scenarios for testing the rules on a real broker.

Each shipment tells one story (normal, stalled, ETA slipping, early, never delivered) and carries
the rule calls that story must cause, written from the story itself with the default thresholds
of docs/design.md §4, never by running the engine: a test then compares what Redo got with an
oracle the consumer cannot have influenced. Some shipments also get a repeated scan (same eventId)
or a late scan (older than one already sent), which must cause nothing at all.

Generation is deterministic for a seed. Times are whole seconds (the Avro timestamps keep
milliseconds), and every gap that decides a rule is hours away from its threshold, so nothing in
the oracle is borderline.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from itertools import pairwise
from time import monotonic, sleep
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from consumer.model import AutomationEvent, Location, ShipmentStatus, TrackingEvent
from devkit.encoding import encode_raw
from devkit.sandbox import SandboxControl

STALL_IN_TRANSIT = timedelta(hours=72)
"""The default in-transit stall threshold the stories are written against."""

CARRIERS = ("UPS", "USPS", "FEDEX")
CITIES = (("Memphis", "TN"), ("Louisville", "KY"), ("Chicago", "IL"), ("Dallas", "TX"))
LONGEST_STORY = timedelta(days=12)
"""No story's scans span more than this, so a whole story fits in the backlog window."""
_LONGEST_IN_TRANSIT_GAP = timedelta(hours=20)
"""The longest gap ``_Writer.travel`` leaves between two in-transit scans after the first."""

CallKey = tuple[str, str, str]
"""A Redo call as compared: (fulfillment ID, body ``status``, body ``datetime``)."""

EVENT_STATUSES = frozenset(event.value for event in AutomationEvent)


class Kind(StrEnum):
    NORMAL = "normal"
    STALLED = "stalled"
    ETA_SLIPPING = "eta_slipping"
    EARLY = "early"
    NEVER_DELIVERED = "never_delivered"


KIND_WEIGHTS = {
    Kind.NORMAL: 40,
    Kind.STALLED: 15,
    Kind.ETA_SLIPPING: 15,
    Kind.EARLY: 15,
    Kind.NEVER_DELIVERED: 15,
}


@dataclass(frozen=True, slots=True)
class Arrival:
    """A record as produced: a scan and when it reaches the topic (its event time for an
    ordinary scan, later for a repeat or a late scan). Records are produced in arrival order."""

    event: TrackingEvent
    arrives_at: datetime


@dataclass(frozen=True, slots=True)
class RuleCall:
    """An event call a story causes: the rule and its detection time (a timer's deadline, or the
    time of the scan that moved the ETA)."""

    rule: AutomationEvent
    at: datetime


@dataclass(frozen=True)
class Shipment:
    """One story: ``scans`` are applied in event-time order and each known one makes a status
    call; ``extras`` (repeats, late scans) make no call; ``rule_calls`` are its event calls."""

    fulfillment_id: str
    kind: Kind
    scans: tuple[TrackingEvent, ...]
    extras: tuple[Arrival, ...] = ()
    rule_calls: tuple[RuleCall, ...] = ()

    @property
    def last_scan(self) -> TrackingEvent:
        return self.scans[-1]

    @property
    def last_status(self) -> ShipmentStatus:
        known = [s.status for s in self.scans if s.status is not ShipmentStatus.UNKNOWN]
        return known[-1]

    def expected_events(self, now: datetime) -> list[CallKey]:
        """Its event calls whose detection time the wall clock ``now`` has passed."""
        return [call_key(self.fulfillment_id, c.rule, c.at) for c in self.rule_calls if c.at < now]

    def expected_statuses(self) -> list[CallKey]:
        """Its status calls with ``FORWARD_SCANS=all``: every known scan of the story."""
        return [
            call_key(self.fulfillment_id, scan.status, scan.occurred_at)
            for scan in self.scans
            if scan.status is not ShipmentStatus.UNKNOWN
        ]

    def arrivals(self) -> list[Arrival]:
        return [Arrival(scan, scan.occurred_at) for scan in self.scans] + list(self.extras)


@dataclass(frozen=True)
class Scenario:
    shipments: tuple[Shipment, ...]

    def records(self) -> list[TrackingEvent]:
        """Every record in produce order: by arrival time, generation order breaking ties."""
        arrivals = [a for shipment in self.shipments for a in shipment.arrivals()]
        order = sorted(range(len(arrivals)), key=lambda i: (arrivals[i].arrives_at, i))
        return [arrivals[i].event for i in order]

    def expected_events(self, now: datetime) -> Counter[CallKey]:
        return Counter(k for s in self.shipments for k in s.expected_events(now))

    def expected_statuses(self) -> Counter[CallKey]:
        return Counter(k for s in self.shipments for k in s.expected_statuses())

    def kinds(self) -> Counter[Kind]:
        return Counter(s.kind for s in self.shipments)

    def by_id(self) -> dict[str, Shipment]:
        return {s.fulfillment_id: s for s in self.shipments}


def produce_in_order(bootstrap: str, topic: str, events: Iterable[TrackingEvent]) -> int:
    """Produce scans keyed by fulfillment ID, keeping each partition in produce order.

    The stories' oracle assumes the topic holds the records in the order given. A producer
    without idempotence may reorder a partition when it retries a batch (right after a topic is
    created, say), and the consumer would then rightly see a different stream; idempotence
    makes librdkafka keep the order through retries."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 20}
    )
    failures: list[str] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failures.append(err.str())

    count = 0
    for event in events:
        while True:
            try:
                producer.produce(
                    topic,
                    encode_raw(event),
                    key=event.fulfillment_id.encode(),
                    on_delivery=on_delivery,
                )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
        count += 1
    remaining = producer.flush(60)
    if remaining or failures:
        raise RuntimeError(f"{remaining} unflushed, failures: {failures[:3]}")
    return count


def iso(moment: datetime) -> str:
    """A time as the request body's ``datetime`` carries it (UTC, milliseconds, ``Z``)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def call_key(fulfillment_id: str, status: str, at: datetime) -> CallKey:
    return (fulfillment_id, str(status), iso(at))


def received(calls: Iterable[Mapping[str, Any]]) -> tuple[Counter[CallKey], Counter[CallKey]]:
    """Sandbox call records → (status calls, event calls) as multisets of ``CallKey``."""
    statuses: Counter[CallKey] = Counter()
    events: Counter[CallKey] = Counter()
    for call in calls:
        body = call["body"]
        key = (call["fulfillment_id"], body["status"], body["datetime"])
        (events if body["status"] in EVENT_STATUSES else statuses)[key] += 1
    return statuses, events


def backlog(
    shipments: int,
    *,
    end: datetime,
    days: int = 30,
    seed: int = 11,
    prefix: str = "shp",
    extra_in_transit: int = 0,
) -> Scenario:
    """``shipments`` stories whose scans all fall in the ``days`` before ``end``.

    About a quarter of the delivered stories get a repeated scan and a quarter a late scan. Put
    ``end`` several days before the wall clock so every deadline has passed when the test runs.
    ``extra_in_transit`` more in-transit scans per story (each under a day after the last) make
    a longer stream over as many shipments, with the same rule calls.
    """
    longest = LONGEST_STORY + extra_in_transit * _LONGEST_IN_TRANSIT_GAP
    if timedelta(days=days) <= longest:
        raise ValueError(f"days must exceed {longest.days}")
    rng = random.Random(seed)
    first_start = _whole_second(end - timedelta(days=days))
    span = int((timedelta(days=days) - longest).total_seconds())
    kinds = list(KIND_WEIGHTS)
    weights = list(KIND_WEIGHTS.values())
    stories = []
    for number in range(shipments):
        kind = rng.choices(kinds, weights)[0]
        start = first_start + timedelta(seconds=rng.randrange(span))
        writer = _Writer(f"{prefix}-{number:05d}", rng, start, extra_in_transit=extra_in_transit)
        story = _STORIES[kind](writer)
        stories.append(_with_extras(story, rng))
    return Scenario(tuple(stories))


def steady_shipment(
    fulfillment_id: str,
    *,
    carrier: str,
    start: datetime,
    gap: timedelta,
    in_transit_scans: int,
    stall_in_transit: timedelta,
) -> Shipment:
    """A shipment scanned in transit every ``gap``, then out for delivery and delivered within
    two hours, well before its ETA. With ``stall_in_transit`` the carrier's threshold, each
    in-transit gap longer than it is one stall episode, flagged ``stall_in_transit`` after the
    scan that opened it."""
    writer = _Writer(fulfillment_id, random.Random(fulfillment_id), start, carrier=carrier)
    writer.scan(ShipmentStatus.PRE_TRANSIT, timedelta(0))
    for _ in range(in_transit_scans):
        writer.scan(ShipmentStatus.IN_TRANSIT, gap)
    writer.scan(ShipmentStatus.OUT_FOR_DELIVERY, gap)
    writer.scan(ShipmentStatus.DELIVERED, timedelta(hours=2))
    writer.eta_all(writer.at.date() + timedelta(days=2))
    stalls = tuple(
        RuleCall(AutomationEvent.STALLED_IN_TRANSIT, scan.occurred_at + stall_in_transit)
        for scan in writer.scans
        if scan.status is ShipmentStatus.IN_TRANSIT and gap > stall_in_transit
    )
    return Shipment(
        fulfillment_id, Kind.STALLED if stalls else Kind.NORMAL, writer.done(), (), stalls
    )


class _Writer:
    """Writes one shipment's scans, each a gap after the previous one."""

    def __init__(
        self,
        fulfillment_id: str,
        rng: random.Random,
        start: datetime,
        carrier: str | None = None,
        *,
        extra_in_transit: int = 0,
    ) -> None:
        self.fulfillment_id = fulfillment_id
        self.extra_in_transit = extra_in_transit
        self.rng = rng
        self.at = _whole_second(start)
        self.carrier = carrier or rng.choice(CARRIERS)
        self.store = f"store-{rng.randrange(5)}"
        self.scans: list[TrackingEvent] = []

    def scan(self, status: ShipmentStatus, gap: timedelta) -> TrackingEvent:
        self.at += gap
        city, region = self.rng.choice(CITIES)
        event = TrackingEvent(
            event_id=f"{self.fulfillment_id}-{len(self.scans)}",
            store_id=self.store,
            order_id=f"order-{self.fulfillment_id}",
            fulfillment_id=self.fulfillment_id,
            status=status,
            occurred_at=self.at,
            carrier=self.carrier,
            tracking_number=f"TRK{self.fulfillment_id}",
            message=f"{status.value.replace('_', ' ').capitalize()} at {city}",
            location=Location(city=city, state=region, country="US"),
        )
        self.scans.append(event)
        return event

    def hours(self, low: float, high: float) -> timedelta:
        """A random gap, whole seconds."""
        return timedelta(seconds=round(self.rng.uniform(low, high) * 3600))

    def travel(self, in_transit: int) -> None:
        """Pre-transit, then ``in_transit`` (+ the writer's extra) in-transit scans, each under
        a day apart."""
        self.scan(ShipmentStatus.PRE_TRANSIT, timedelta(0))
        self.scan(ShipmentStatus.IN_TRANSIT, self.hours(2, 30))
        for _ in range(in_transit - 1 + self.extra_in_transit):
            self.scan(ShipmentStatus.IN_TRANSIT, self.hours(3, 20))

    def deliver(self) -> datetime:
        """Out for delivery, then delivered a few hours later; returns the delivery time."""
        self.scan(ShipmentStatus.OUT_FOR_DELIVERY, self.hours(3, 20))
        return self.scan(ShipmentStatus.DELIVERED, self.hours(1, 8)).occurred_at

    def eta_all(self, eta: date) -> None:
        self.eta_from(0, eta)

    def eta_from(self, index: int, eta: date) -> None:
        """Scans from ``index`` on carry ``eta``."""
        for i in range(index, len(self.scans)):
            self.scans[i] = replace(self.scans[i], estimated_delivery_date=eta)

    def done(self) -> tuple[TrackingEvent, ...]:
        return tuple(self.scans)


def _normal(w: _Writer) -> Shipment:
    """Delivered before the end of its ETA day, never a day between scans: no rule call. Now
    and then a scan comes as ``unknown`` (carrier activity without a status call)."""
    w.travel(w.rng.randint(2, 4))
    delivered = w.deliver()
    w.eta_all(delivered.date() + timedelta(days=w.rng.randint(0, 2)))
    if w.rng.random() < 0.2:
        w.scans[2] = replace(w.scans[2], status=ShipmentStatus.UNKNOWN)
    return Shipment(w.fulfillment_id, Kind.NORMAL, w.done())


def _stalled(w: _Writer) -> Shipment:
    """One in-transit gap of 78 h to 5 days, then the journey goes on to delivery: one stall,
    72 h after the scan before the gap."""
    w.travel(w.rng.randint(2, 3))
    before_gap = w.scans[-1].occurred_at
    w.scan(ShipmentStatus.IN_TRANSIT, STALL_IN_TRANSIT + w.hours(6, 48))
    delivered = w.deliver()
    w.eta_all(delivered.date() + timedelta(days=w.rng.randint(0, 1)))
    stall = RuleCall(AutomationEvent.STALLED_IN_TRANSIT, before_gap + STALL_IN_TRANSIT)
    return Shipment(w.fulfillment_id, Kind.STALLED, w.done(), (), (stall,))


def _eta_slipping(w: _Writer) -> Shipment:
    """An in-transit scan, before the first ETA's day is over, moves the ETA 1 to 3 days later:
    one ``delayed`` at that scan. Delivered within the new ETA's day."""
    w.travel(w.rng.randint(2, 4))
    shift = w.rng.randrange(1, len(w.scans))
    moved = w.scans[shift].occurred_at.date()
    delivered = w.deliver()
    later = max(delivered.date(), moved + timedelta(days=1))
    days = w.rng.randint(1, (later - moved).days)
    w.eta_all(later - timedelta(days=days))
    w.eta_from(shift, later)
    delayed = RuleCall(AutomationEvent.DELAYED, w.scans[shift].occurred_at)
    return Shipment(w.fulfillment_id, Kind.ETA_SLIPPING, w.done(), (), (delayed,))


def _early(w: _Writer) -> Shipment:
    """An in-transit scan moves the ETA 1 to 3 days earlier: one ``arriving_early`` at that
    scan. Delivered within the new ETA's day."""
    w.travel(w.rng.randint(2, 4))
    shift = w.rng.randrange(1, len(w.scans))
    delivered = w.deliver()
    sooner = delivered.date() + timedelta(days=w.rng.randint(0, 1))
    w.eta_all(sooner + timedelta(days=w.rng.randint(1, 3)))
    w.eta_from(shift, sooner)
    early = RuleCall(AutomationEvent.ARRIVING_EARLY, w.scans[shift].occurred_at)
    return Shipment(w.fulfillment_id, Kind.EARLY, w.done(), (), (early,))


def _never_delivered(w: _Writer) -> Shipment:
    """In transit, then silence: a stall 72 h after the last scan, and a ``delayed`` when the
    ETA's day (1 to 3 days after the last scan) is over."""
    w.travel(w.rng.randint(1, 3))
    last = w.scans[-1].occurred_at
    eta = last.date() + timedelta(days=w.rng.randint(1, 3))
    w.eta_all(eta)
    end_of_eta_day = datetime.combine(eta + timedelta(days=1), time(0), tzinfo=UTC)
    calls = (
        RuleCall(AutomationEvent.STALLED_IN_TRANSIT, last + STALL_IN_TRANSIT),
        RuleCall(AutomationEvent.DELAYED, end_of_eta_day),
    )
    return Shipment(w.fulfillment_id, Kind.NEVER_DELIVERED, w.done(), (), calls)


_STORIES = {
    Kind.NORMAL: _normal,
    Kind.STALLED: _stalled,
    Kind.ETA_SLIPPING: _eta_slipping,
    Kind.EARLY: _early,
    Kind.NEVER_DELIVERED: _never_delivered,
}


def _with_extras(story: Shipment, rng: random.Random) -> Shipment:
    """Maybe add a repeat (same eventId, a few hours late) and a late scan (a new eventId, older
    than a scan already sent, between two scans under a day apart)."""
    extras: list[Arrival] = []
    scans = story.scans
    if rng.random() < 0.25:
        original = rng.choice(scans)
        extras.append(
            Arrival(original, original.occurred_at + timedelta(minutes=rng.randint(1, 180)))
        )
    pairs = [
        (a, b) for a, b in pairwise(scans) if b.occurred_at - a.occurred_at < timedelta(hours=24)
    ]
    if pairs and rng.random() < 0.25:
        a, b = rng.choice(pairs)
        middle = a.occurred_at + (b.occurred_at - a.occurred_at) // 2
        late = replace(
            a,
            event_id=f"{story.fulfillment_id}-late",
            status=ShipmentStatus.IN_TRANSIT,
            occurred_at=_whole_second(middle),
            message="In transit (reported late)",
        )
        extras.append(Arrival(late, b.occurred_at + timedelta(minutes=rng.randint(1, 120))))
    return replace(story, extras=tuple(extras))


def _whole_second(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


def wait_for_rule_calls(
    control: SandboxControl, expected: Counter[CallKey], scenario: Scenario, timeout: float = 30
) -> None:
    """Wait until the sandbox accepted every ``expected`` event call (timer calls come on the
    wall clock once the consumer caught up); on timeout, fail naming what is missing and what
    came instead."""
    deadline = monotonic() + timeout
    while True:
        events = received(control.calls(status_code=200))[1]
        missing = expected - events
        if not missing:
            return
        if monotonic() >= deadline:
            extra = events - expected
            raise TimeoutError(
                f"timed out after {timeout:.0f}s waiting for rule calls; "
                f"{sum(missing.values())} missing:\n{explain(missing, scenario)}\n"
                f"{sum(extra.values())} unexpected:\n{explain(extra, scenario)}"
            )
        sleep(0.2)


def explain(keys: Iterable[CallKey], scenario: Scenario, limit: int = 8) -> str:
    """A failure message: each call (up to ``limit``) with its shipment's story and scans."""
    stories = scenario.by_id()
    lines = []
    for fulfillment_id, status, at in sorted(keys)[:limit]:
        story = stories.get(fulfillment_id)
        if story is None:
            lines.append(f"{fulfillment_id} {status} {at}: not in the scenario")
            continue
        scans = ", ".join(
            f"{s.status.value}@{iso(s.occurred_at)} eta={s.estimated_delivery_date}"
            for s in story.scans
        )
        lines.append(f"{fulfillment_id} ({story.kind.value}) {status} {at}; scans: {scans}")
    return "\n".join(lines)

"""``make demo``: what the product is for, on this machine, in one command.

Starts a real Kafka broker (or uses KAFKA_BOOTSTRAP_SERVERS) and the Redo sandbox, then produces
a stream a newcomer can read: 25 ordinary shipments delivered over the last five days, three
shipments whose scans are time-shifted so that the default rules detect them right now (one
stalls in transit, one slips its ETA, one will arrive early), and a few undecodable records. It
runs the consumer as a real process, with a live progress line, until every offset is committed
and the three automation events have reached the sandbox; stops it with SIGTERM; prints what
Redo accepted per call kind and per rule, the dead letters and where to look next; and leaves
nothing running. It exits 1 if Redo did not get exactly the rule calls the three stories call
for, so CI running the demo also checks the product's point end to end.

The ordinary shipments are built never to trip a rule: every scan lies in the past (the partition
clock never runs ahead of the wall clock), no gap reaches a stall threshold, and each keeps one
ETA, the day after its delivery. The stories' ETAs lie days ahead, so only their own rule fires.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from confluent_kafka import KafkaError, Message, Producer

from consumer.model import AutomationEvent, Location, ShipmentStatus, TrackingEvent
from devkit.broker import create_topic, kafka_cluster
from devkit.consumer_process import ConsumerProcess
from devkit.encoding import encode_raw
from devkit.generator import tracking_stream
from devkit.kafka_tools import committed_offsets, end_offsets, read_topic
from devkit.sandbox import SandboxControl, SandboxServer
from devkit.scenarios import CallKey, call_key, received

SHIPMENTS = 25
SCANS_PER_SHIPMENT = 6
UNKNOWN_EVERY = 20
UNDECODABLE = 3
TIMEOUT_SECONDS = 120
STALL_IN_TRANSIT = timedelta(hours=72)
"""The default in-transit stall threshold (consumer/rules/config.py) the stalled story crosses."""


class Story(NamedTuple):
    """A shipment a rule must catch: what it shows, its scans, the one event call it causes."""

    title: str
    shows: str
    scans: list[TrackingEvent]
    rule_call: CallKey


def main() -> int:
    token = f"demo-{uuid.uuid4()}"
    topic = f"demo-scans-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC).replace(microsecond=0)
    stories = _stories(now)
    expected_events = Counter(story.rule_call for story in stories)
    with (
        kafka_cluster() as bootstrap,
        SandboxServer(token=token) as sandbox,
        SandboxControl(sandbox.url) as control,
        tempfile.TemporaryDirectory() as scratch,
    ):
        print(f"broker  {bootstrap}\nsandbox {sandbox.url}\ntopic   {topic} (3 partitions)\n")
        create_topic(bootstrap, topic, 3)
        background = _ordinary_shipments(now)
        scans = sorted(
            background + [scan for story in stories for scan in story.scans],
            key=lambda scan: scan.occurred_at,
        )
        _produce(bootstrap, topic, [(s.fulfillment_id.encode(), encode_raw(s)) for s in scans])
        _produce(bootstrap, topic, [(b"ful-00000", b"\x00garbage")] * UNDECODABLE)
        print(
            f"produced {len(scans)} scans ({SHIPMENTS} ordinary shipments, every "
            f"{UNKNOWN_EVERY}th in-transit scan 'unknown') and {UNDECODABLE} undecodable records"
        )
        print("stories, scans shifted in time so that the default rules detect them now:")
        for story in stories:
            _, rule, at = story.rule_call
            print(f"  {story.title:<14} {story.shows}\n  {'':<14} expect {rule} at {at}")
        print()

        secret = Path(scratch) / "redo-secret"
        secret.write_text(token)
        group = f"demo-{topic}"
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "KAFKA_TOPIC": topic,
            "KAFKA_GROUP_ID": group,
            "REDO_API_URL": sandbox.url,
            "REDO_API_SECRET_FILE": str(secret),
            "COMMIT_INTERVAL_SECONDS": "0.5",
        }
        with ConsumerProcess(env) as consumer:
            consumer.wait_ready()
            progress = _Progress(control, bootstrap, group, topic, expected_events)
            progress.run(consumer, TIMEOUT_SECONDS)
            metrics = _metrics_snapshot(consumer)
            metrics_url = consumer.url + "/metrics"
            exit_code = consumer.stop()

        calls = control.calls(status_code=200)
        summary = control.summary()
        dead = read_topic(bootstrap, f"{topic}.dlq", expected=UNDECODABLE)
        events = received(calls)[1]
        _print_summary(summary, stories, events, dead, metrics, exit_code)
        _print_next_steps(metrics_url, topic)
        ok = exit_code == 0 and events == expected_events
        if events != expected_events:
            print(f"\nFAIL: expected rule calls {sorted(expected_events)}, got {sorted(events)}")
        return 0 if ok else 1


def _stories(now: datetime) -> list[Story]:
    """The three shipments a rule must catch, each with the one event call it must cause."""
    today = now.date()
    stalled = "ful-stalled"
    stall_scan = now - STALL_IN_TRANSIT - timedelta(hours=1)
    delayed = "ful-delayed"
    slip_scan = now - timedelta(hours=2)
    early = "ful-early"
    early_scan = now - timedelta(hours=3)
    return [
        Story(
            stalled,
            "in transit 73 h ago, not scanned since (threshold 72 h)",
            [
                _scan(stalled, 0, ShipmentStatus.PRE_TRANSIT, now - timedelta(hours=80), today),
                _scan(stalled, 1, ShipmentStatus.IN_TRANSIT, stall_scan, today),
            ],
            call_key(stalled, AutomationEvent.STALLED_IN_TRANSIT, stall_scan + STALL_IN_TRANSIT),
        ),
        Story(
            delayed,
            "a scan 2 h ago moved its ETA two days later",
            [
                _scan(delayed, 0, ShipmentStatus.PRE_TRANSIT, now - timedelta(hours=30), today),
                _scan(delayed, 1, ShipmentStatus.IN_TRANSIT, now - timedelta(hours=20), today),
                _scan(delayed, 2, ShipmentStatus.IN_TRANSIT, slip_scan, today, eta_shift=2),
            ],
            call_key(delayed, AutomationEvent.DELAYED, slip_scan),
        ),
        Story(
            early,
            "a scan 3 h ago moved its ETA three days earlier",
            [
                _scan(early, 0, ShipmentStatus.PRE_TRANSIT, now - timedelta(hours=30), today),
                _scan(early, 1, ShipmentStatus.IN_TRANSIT, now - timedelta(hours=20), today),
                _scan(early, 2, ShipmentStatus.IN_TRANSIT, early_scan, today, eta_shift=-3),
            ],
            call_key(early, AutomationEvent.ARRIVING_EARLY, early_scan),
        ),
    ]


def _scan(
    fulfillment_id: str,
    index: int,
    status: ShipmentStatus,
    at: datetime,
    today: date,
    *,
    eta_shift: int = 0,
) -> TrackingEvent:
    """A story's scan; every story starts with an ETA four days ahead, ``eta_shift`` moves it."""
    return TrackingEvent(
        event_id=f"{fulfillment_id}-scan-{index}",
        store_id="store-1",
        order_id=f"order-{fulfillment_id}",
        fulfillment_id=fulfillment_id,
        status=status,
        occurred_at=at,
        carrier="UPS",
        tracking_number=f"1Z-{fulfillment_id}",
        message=f"{status.value.replace('_', ' ').capitalize()} at Memphis",
        location=Location(city="Memphis", state="TN", country="US"),
        estimated_delivery_date=today + timedelta(days=4 + eta_shift),
    )


def _ordinary_shipments(now: datetime) -> list[TrackingEvent]:
    """Shipments that must trip no rule (see the module docstring): the generator's stream,
    started five days ago so it ends before now, each shipment's ETA fixed to the day after its
    delivery, and some in-transit scans made ``unknown`` (a scan that makes no call)."""
    stream = tracking_stream(SHIPMENTS, SCANS_PER_SHIPMENT, start=now - timedelta(days=5))
    delivered = {
        scan.fulfillment_id: scan.occurred_at.date()
        for scan in stream
        if scan.status is ShipmentStatus.DELIVERED
    }
    in_transit = 0
    shipments = []
    for scan in stream:
        status = scan.status
        if status is ShipmentStatus.IN_TRANSIT:
            in_transit += 1
            if in_transit % UNKNOWN_EVERY == 0:
                status = ShipmentStatus.UNKNOWN
        eta = delivered[scan.fulfillment_id] + timedelta(days=1)
        shipments.append(replace(scan, status=status, estimated_delivery_date=eta))
    return shipments


_LIBRDKAFKA_LOG = logging.getLogger("devkit.demo.librdkafka")
"""Where the demo's own producers log: nowhere. A fresh broker makes an idempotent producer retry
once ("coordinator load in progress"), which is noise to a newcomer, not a problem; a real
failure still raises from ``_produce``."""
_LIBRDKAFKA_LOG.addHandler(logging.NullHandler())
_LIBRDKAFKA_LOG.propagate = False


def _produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    """Produce keyed records, idempotent (a retried batch never lands after a later one), with
    librdkafka's log kept off the terminal (``_LIBRDKAFKA_LOG``)."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 20,
            "enable.idempotence": True,
            "logger": _LIBRDKAFKA_LOG,
        }
    )
    failures: list[str] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failures.append(err.str())

    for key, value in records:
        producer.produce(topic, value, key=key, on_delivery=on_delivery)
        producer.poll(0)
    remaining = producer.flush(60)
    if remaining or failures:
        raise RuntimeError(f"produce to {topic}: {remaining} unflushed, failures {failures[:3]}")


class _Progress:
    """The live progress line: calls Redo accepted, offsets committed, automation events seen.
    On a terminal it rewrites one line; otherwise (CI logs) it prints a line when it changes."""

    def __init__(
        self,
        control: SandboxControl,
        bootstrap: str,
        group: str,
        topic: str,
        expected_events: Counter[CallKey],
    ) -> None:
        self._control = control
        self._bootstrap = bootstrap
        self._group = group
        self._topic = topic
        self._expected = expected_events
        self._end = sum(end_offsets(bootstrap, topic).values())
        self._tty = sys.stdout.isatty()

    def run(self, consumer: ConsumerProcess, timeout: float) -> None:
        """Until every offset is committed and the expected event calls were accepted; raises
        TimeoutError naming what is missing (with the consumer's log) after ``timeout``."""
        started = time.monotonic()
        last = ""
        while True:
            consumer.alive_or_fail()
            committed = sum(
                max(o, 0)
                for o in committed_offsets(self._bootstrap, self._group, self._topic).values()
            )
            summary = self._control.summary()
            accepted = summary["accepted"]
            seen = received(self._control.calls(status_code=200))[1]
            events = ", ".join(
                f"{rule.value} {accepted['event'].get(rule.value, 0)}" for rule in AutomationEvent
            )
            line = (
                f"[{time.monotonic() - started:5.1f}s] Redo accepted "
                f"{sum(accepted['status'].values())} status calls | committed "
                f"{committed}/{self._end} | events: {events}"
            )
            done = committed >= self._end and not self._expected - seen
            if self._tty:
                print("\r" + line, end="\n" if done else "", flush=True)
            elif line != last:
                print(line, flush=True)
            last = line
            if done:
                return
            if time.monotonic() - started > timeout:
                raise TimeoutError(
                    f"timed out after {timeout:.0f}s: committed {committed}/{self._end}, missing "
                    f"rule calls {sorted(self._expected - seen)}\n{consumer.tail()}"
                )
            time.sleep(0.5)


def _metrics_snapshot(consumer: ConsumerProcess) -> dict[str, float]:
    """A few of the consumer's own counters, read from /metrics before it stops."""
    names = {
        "records done": "tracking_records_done_total",
        "Redo requests": "tracking_redo_requests_total",
        "rule firings": "tracking_rule_firings_total",
        "dead letters": "tracking_dead_letters_total",
    }
    return {label: consumer.metric(name) or 0.0 for label, name in names.items()}


def _print_summary(
    summary: dict[str, Any],
    stories: list[Story],
    events: Counter[CallKey],
    dead: list[Message],
    metrics: dict[str, float],
    exit_code: int,
) -> None:
    accepted = summary["accepted"]
    total = sum(count for counts in accepted.values() for count in counts.values())
    print(
        f"\nRedo (the sandbox) accepted {total} calls for {summary['fulfillments']} "
        f"fulfillments; answers by status code {summary['answers']}"
    )
    print(f"\n  {'kind':<8} {'status':<22} {'calls':>5}")
    for kind in ("status", "event"):
        for status, count in accepted[kind].items():
            print(f"  {kind:<8} {status:<22} {count:>5}")
    print(f"\n  {'rule':<20} {'shipment':<13} {'detected at (the rule deadline)':<32} reported")
    for story in stories:
        _, rule, at = story.rule_call
        reported = "yes" if events[story.rule_call] else "NO"
        print(f"  {rule:<20} {story.title:<13} {at:<32} {reported}")
    reasons = Counter(
        value.decode()
        for message in dead
        for name, value in message.headers() or []
        if name == "dlq.reason"
    )
    print(f"\ndead letters: {len(dead)} by reason {dict(reasons)}")
    print("consumer metrics at the end: " + ", ".join(f"{k} {v:g}" for k, v in metrics.items()))
    print("offsets: every partition committed to its end")
    print(f"consumer exit code after SIGTERM: {exit_code}")


def _print_next_steps(metrics_url: str, topic: str) -> None:
    print("\nwhere to look next:")
    print(f"  /metrics      {metrics_url} while it ran (METRICS_PORT, 9108 by default);")
    print("                tracking_rule_firings_total{rule} counts the automation events")
    print(f"  dead letters  topic {topic}.dlq: the original bytes, headers dlq.reason, dlq.error,")
    print("                dlq.source.*; README 'Operations' says how to replay them")
    print("  the rules     README 'Rules'; thresholds per carrier in rules.example.yaml")


if __name__ == "__main__":
    sys.exit(main())

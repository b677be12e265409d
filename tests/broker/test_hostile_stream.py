"""Hostile records on a real broker, mixed into a normal stream on the same partitions: the
consumer stays up, every partition commits to its end, every normal shipment gets exactly its
calls and no rule call, and each hostile record is sent or dead-lettered with a reason."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from consumer.model import ShipmentStatus, TrackingEvent
from devkit.consumer_process import ConsumerProcess, wait_fully_committed
from devkit.encoding import encode_raw
from devkit.expectations import expected_status_bodies
from devkit.generator import tracking_stream
from devkit.kafka_tools import produce, produce_events, read_topic
from devkit.sandbox import SandboxControl
from tests.support.expected_calls import received_bodies

pytestmark = pytest.mark.broker

Env = Callable[..., dict[str, str]]
MUTATIONS = 10_000


def _hostile(now: datetime, among: datetime) -> list[tuple[bytes | None, bytes | None, str]]:
    """``(key, value, what)``: schema-valid records at the edges, and a few invalid ones.

    Their ordinary scans are dated ``among``, the time of the stream around them: a record
    dated later than its neighbours would rightly move the partition's stream time."""
    base = TrackingEvent("h", "store", "order", "h", ShipmentStatus.IN_TRANSIT, among)
    events = {
        "future-day": replace(base, occurred_at=now + timedelta(days=1)),
        "future-9999": replace(base, occurred_at=datetime(9999, 12, 31, 23, 59, tzinfo=UTC)),
        "year-1": replace(base, occurred_at=datetime(1, 1, 1, tzinfo=UTC)),
        "epoch-0": replace(base, occurred_at=datetime(1970, 1, 1, tzinfo=UTC)),
        "before-epoch": replace(base, occurred_at=datetime(1969, 7, 20, 20, 17, tzinfo=UTC)),
        "eta-9999": replace(base, estimated_delivery_date=date.max),
        "eta-year-1": replace(base, estimated_delivery_date=date.min),
        "ids-a/b?c#d%e f": replace(base, store_id="st/1?x#y%z", order_id="ö r/d"),
        "ids-日本-\u202e": replace(base, order_id="注文#1", store_id="магазин"),
        "huge-message": replace(base, message="m" * 200_000, carrier="c" * 5_000),
        "control-chars": replace(base, message="\x00\x01\x1b[31m\r\n", tracking_number="\x7f"),
        "empty-strings": replace(base, message="", carrier="", tracking_number=""),
        "long-id": replace(base, order_id="o" * 300),
    }
    records: list[tuple[bytes | None, bytes | None, str]] = []
    for what, event in events.items():
        fulfillment = f"hostile-{what}"
        event = replace(event, event_id=f"evt-{what}", fulfillment_id=fulfillment)
        records.append((fulfillment.encode(), encode_raw(event), what))
    valid = encode_raw(replace(base, fulfillment_id="hostile-key-mismatch", event_id="km"))
    records.append((b"hostile-other-key", valid, "key-mismatch"))
    records.append((None, encode_raw(replace(base, fulfillment_id="hostile-nokey")), "no-key"))
    return records


def test_hostile_records_cost_only_themselves(
    kafka_bootstrap: str, new_topic: Callable[..., str], sandbox: SandboxControl, consumer_env: Env
) -> None:
    topic = new_topic(partitions=3)
    now = datetime.now(UTC)
    normal = tracking_stream(shipments=60, scans_per_shipment=4, seed=91, prefix="normal")
    half = len(normal) // 2
    hostile = _hostile(now, among=normal[half - 1].occurred_at)
    produce_events(kafka_bootstrap, topic, normal[:half])
    produce(kafka_bootstrap, topic, ((key, value) for key, value, _ in hostile))
    produce_events(kafka_bootstrap, topic, normal[half:])
    env = consumer_env(topic, MAX_SCAN_AGE="0")

    with ConsumerProcess(env) as proc:
        wait_fully_committed(kafka_bootstrap, env["KAFKA_GROUP_ID"], topic, [proc])
        assert proc.stop() == 0, proc.tail()
    dead = read_topic(kafka_bootstrap, f"{topic}.dlq", expected=5)

    statuses = received_bodies(sandbox)
    expected = expected_status_bodies(normal)
    for fulfillment, bodies in expected.items():
        assert statuses[fulfillment] == bodies, f"{fulfillment}: calls missing, extra or reordered"
    events = received_bodies(sandbox, events=True)
    flagged = {f: bodies for f, bodies in events.items() if f.startswith("normal")}
    assert not flagged, f"rules fired for normal shipments: {sorted(flagged.items())[:3]}"

    dead_reasons = {
        (m.key() or b"").decode(errors="replace"): dict(m.headers() or ())["dlq.reason"].decode()
        for m in dead
    }
    sent = set(statuses) | set(events)
    refused = {call["fulfillment_id"] for call in sandbox.calls(status_code=400)}
    for key, _value, what in hostile:
        name = (key or b"").decode()
        assert name in sent or name in dead_reasons, f"{what}: neither sent nor dead-lettered"
    assert dead_reasons["hostile-future-day"] == "future_event_time"
    assert dead_reasons["hostile-future-9999"] == "future_event_time"
    assert dead_reasons["hostile-long-id"] == "decode"
    assert dead_reasons["hostile-other-key"] == "decode"
    assert dead_reasons[""] == "missing_key"
    for accepted in ("year-1", "epoch-0", "before-epoch", "eta-9999", "eta-year-1"):
        assert f"hostile-{accepted}" in sent, f"{accepted}: a legal record should reach Redo"
    assert {"hostile-ids-a/b?c#d%e f", "hostile-ids-日本-\u202e"} <= sent
    # Redo may refuse a 200 kB message (then it is a dead letter with Redo's answer).
    assert "hostile-huge-message" in (sent | refused) & (sent | set(dead_reasons))


def test_random_and_mutated_bytes_are_each_decoded_or_dead_lettered(
    kafka_bootstrap: str, new_topic: Callable[..., str], sandbox: SandboxControl, consumer_env: Env
) -> None:
    """10,000 truncated, bit-flipped, random and wrongly framed values among a normal stream:
    each is decoded (then handled like any scan) or dead-lettered; nothing stops a partition."""
    topic = new_topic(partitions=3)
    rng = random.Random(2026)
    normal = tracking_stream(shipments=30, scans_per_shipment=3, seed=92, prefix="normal")
    template = [encode_raw(replace(e, fulfillment_id="mut")) for e in normal[:20]]
    mutated: list[tuple[bytes | None, bytes | None]] = []
    for number in range(MUTATIONS):
        valid = bytearray(rng.choice(template))
        kind = number % 4
        if kind == 0:
            value = bytes(valid[: rng.randrange(len(valid))])
        elif kind == 1:
            for _ in range(rng.randint(1, 4)):
                valid[rng.randrange(len(valid))] ^= 1 << rng.randrange(8)
            value = bytes(valid)
        elif kind == 2:
            value = rng.randbytes(rng.randint(0, 300))
        else:
            value = bytes([0]) + rng.randint(0, 9).to_bytes(4, "big") + bytes(valid)
        mutated.append((f"mut-{number % 500}".encode(), value))
    produce_events(kafka_bootstrap, topic, normal[: len(normal) // 2])
    produce(kafka_bootstrap, topic, mutated)
    produce_events(kafka_bootstrap, topic, normal[len(normal) // 2 :])
    env = consumer_env(topic)

    with ConsumerProcess(env) as proc:
        wait_fully_committed(kafka_bootstrap, env["KAFKA_GROUP_ID"], topic, [proc], timeout=300)
        done = {
            outcome: proc.metric("tracking_records_done_total", outcome=outcome) or 0.0
            for outcome in (
                "sent",
                "no_call",
                "dead_lettered",
                "duplicate",
                "stale",
                "out_of_order",
            )
        }
        assert proc.stop() == 0, proc.tail()

    assert sum(done.values()) == MUTATIONS + len(normal), done
    dead = read_topic(kafka_bootstrap, f"{topic}.dlq", expected=int(done["dead_lettered"]))
    assert len(dead) == done["dead_lettered"]
    assert done["dead_lettered"] >= MUTATIONS // 2, "most mutations cannot decode"
    statuses = received_bodies(sandbox)
    for fulfillment, bodies in expected_status_bodies(normal).items():
        assert statuses[fulfillment] == bodies, f"{fulfillment}: calls missing, extra or reordered"

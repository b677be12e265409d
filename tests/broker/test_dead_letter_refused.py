"""A dead letter the broker refuses: a record is committed only once a dead letter of it was
acknowledged, a too-large one is written cut, and a missing topic holds the partition visibly
(log, metric, ``/readyz``) until it is back — nothing spins silently, nothing is skipped."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from consumer.kafka.dead_letters import TRUNCATED_VALUE_BYTES
from devkit.broker import create_topic, delete_topics
from devkit.consumer_process import ConsumerProcess, wait_fully_committed
from devkit.generator import tracking_stream
from devkit.kafka_tools import committed_offsets, produce, produce_events, read_topic, wait_until
from devkit.sandbox import SandboxControl

pytestmark = pytest.mark.broker

Env = Callable[..., dict[str, str]]
GARBAGE = b"\xff" * 50_000


def test_a_dead_letter_too_large_for_its_topic_is_written_cut(
    kafka_bootstrap: str, new_topic: Callable[..., str], sandbox: SandboxControl, consumer_env: Env
) -> None:
    topic = new_topic(partitions=1)
    dead_letter_topic = new_topic(partitions=1, config={"max.message.bytes": "6000"})
    produce(kafka_bootstrap, topic, [(b"ful-big", GARBAGE)])
    produce_events(kafka_bootstrap, topic, tracking_stream(shipments=3, scans_per_shipment=3))
    env = consumer_env(topic, DLQ_TOPIC=dead_letter_topic)

    with ConsumerProcess(env) as proc:
        wait_fully_committed(kafka_bootstrap, env["KAFKA_GROUP_ID"], topic, [proc])
        assert proc.stop() == 0, proc.tail()

    [dead] = read_topic(kafka_bootstrap, dead_letter_topic, expected=1)
    headers = dict(dead.headers() or ())
    assert headers["dlq.reason"] == b"decode"
    assert headers["dlq.truncated"] == str(len(GARBAGE)).encode()
    assert headers["dlq.source.offset"] == b"0"
    assert dead.value() == GARBAGE[:TRUNCATED_VALUE_BYTES]


def test_a_missing_dead_letter_topic_holds_the_partition_visibly_until_it_exists(
    kafka_bootstrap: str, new_topic: Callable[..., str], sandbox: SandboxControl, consumer_env: Env
) -> None:
    topic = new_topic(partitions=1)
    dead_letter_topic = new_topic(partitions=1)
    env = consumer_env(topic, DLQ_TOPIC=dead_letter_topic)
    group = env["KAFKA_GROUP_ID"]
    before = tracking_stream(shipments=3, scans_per_shipment=3, seed=5, prefix="before")
    after = tracking_stream(shipments=3, scans_per_shipment=3, seed=6, prefix="after")

    with ConsumerProcess(env) as proc:
        produce_events(kafka_bootstrap, topic, before)
        wait_fully_committed(kafka_bootstrap, group, topic, [proc])
        proc.wait_ready()
        delete_topics(kafka_bootstrap, [dead_letter_topic])
        produce(kafka_bootstrap, topic, [(b"ful-bad", b"\x00garbage")])
        produce_events(kafka_bootstrap, topic, after)
        bad_offset = len(before)

        wait_until(
            lambda: (proc.metric("tracking_kafka_writes_held", topic=dead_letter_topic) or 0) >= 1,
            120,
            f"the held dead-letter write to show in /metrics; log:\n{proc.tail()}",
        )
        assert proc.probe("/readyz") == 503
        assert "Kafka write failed" in proc.tail(200)
        assert committed_offsets(kafka_bootstrap, group, topic)[0] <= bad_offset

        create_topic(kafka_bootstrap, dead_letter_topic, 1)
        wait_fully_committed(kafka_bootstrap, group, topic, [proc], timeout=180)
        wait_until(lambda: proc.probe("/readyz") == 200, 30, "readiness back after the topic")
        assert proc.metric("tracking_kafka_writes_held", topic=dead_letter_topic) == 0
        assert proc.stop() == 0, proc.tail()

    [dead] = read_topic(kafka_bootstrap, dead_letter_topic, expected=1)
    assert dict(dead.headers() or ())["dlq.source.offset"] == str(bad_offset).encode()
    assert {call["fulfillment_id"] for call in sandbox.calls(status_code=200)} >= {
        event.fulfillment_id for event in after
    }

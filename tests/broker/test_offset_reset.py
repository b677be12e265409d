"""``KAFKA_AUTO_OFFSET_RESET`` decides where a new group starts: ``latest`` skips the backlog."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from devkit.consumer_process import ConsumerProcess, wait_fully_committed
from devkit.generator import tracking_stream
from devkit.kafka_tools import produce_events
from devkit.sandbox import SandboxControl
from tests.support.expected_calls import received_bodies

pytestmark = pytest.mark.broker

Env = Callable[..., dict[str, str]]


def test_a_new_group_with_latest_starts_at_the_end_of_the_log(
    kafka_bootstrap: str, new_topic: Callable[..., str], sandbox: SandboxControl, consumer_env: Env
) -> None:
    topic = new_topic(partitions=3)
    backlog = tracking_stream(shipments=20, scans_per_shipment=3, seed=81, prefix="backlog")
    live = tracking_stream(shipments=10, scans_per_shipment=3, seed=82, prefix="live")
    produce_events(kafka_bootstrap, topic, backlog)
    env = consumer_env(topic, KAFKA_AUTO_OFFSET_RESET="latest")

    with ConsumerProcess(env) as proc:
        proc.wait_ready()
        # It commits where it starts, the end of the log: a restart resumes there.
        wait_fully_committed(kafka_bootstrap, env["KAFKA_GROUP_ID"], topic, [proc])
        assert proc.stop() == 0, proc.tail()
    produce_events(kafka_bootstrap, topic, live[:10])  # while it is down: must not be skipped
    with ConsumerProcess(env) as proc:
        produce_events(kafka_bootstrap, topic, live[10:])
        wait_fully_committed(kafka_bootstrap, env["KAFKA_GROUP_ID"], topic, [proc])
        assert proc.stop() == 0, proc.tail()

    called = set(received_bodies(sandbox))
    assert called == {event.fulfillment_id for event in live}

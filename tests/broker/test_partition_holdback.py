"""A record whose call keeps failing holds back its partition's committed offset, and only
that: other fulfillments on the same partition keep getting their calls, other partitions keep
committing, and once the call goes through the partition catches up with nothing missing."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from devkit.consumer_process import ConsumerProcess, wait_fully_committed
from devkit.expectations import expected_status_bodies
from devkit.generator import tracking_stream
from devkit.kafka_tools import committed_offsets, end_offsets, produce_events, wait_until
from devkit.sandbox import SandboxControl
from tests.support.expected_calls import received_bodies, record_positions

pytestmark = pytest.mark.broker

Env = Callable[..., dict[str, str]]


def test_a_failing_call_holds_back_only_its_partition_until_it_succeeds(
    kafka_bootstrap: str, new_topic: Callable[..., str], sandbox: SandboxControl, consumer_env: Env
) -> None:
    topic = new_topic(partitions=3)
    first = tracking_stream(shipments=60, scans_per_shipment=4, seed=21, prefix="first")
    later = tracking_stream(shipments=30, scans_per_shipment=3, seed=22, prefix="later")
    produce_events(kafka_bootstrap, topic, first)
    positions = record_positions(kafka_bootstrap, topic, len(first))

    # The victim: a fulfillment whose first record sits mid-partition, with records of other
    # fulfillments both before it (they must get committed) and after it (they must get sent).
    partition = 0
    on_partition = sorted(
        (offset, key) for key, found in positions.items() for p, offset in found if p == partition
    )
    victim = on_partition[len(on_partition) // 3][1]
    victim_offset = positions[victim][0][1]  # its first record, where the partition must stop
    after_victim = {key for offset, key in on_partition if offset > victim_offset} - {victim}
    assert victim_offset > 0 and after_victim, "the layout must put records around the victim"

    # Redo keeps answering 404 for the victim; an hour-long window keeps the consumer retrying.
    sandbox.set_faults(not_found=[victim])
    env = consumer_env(topic, NOT_FOUND_RETRY_WINDOW_SECONDS="3600")
    group = env["KAFKA_GROUP_ID"]
    expected_first = expected_status_bodies(first)

    with ConsumerProcess(env) as proc:
        wait_until(
            lambda: all(received_bodies(sandbox).get(f) == expected_first[f] for f in after_victim),
            120,
            f"the calls of {len(after_victim)} fulfillments after the victim on partition "
            f"{partition}; consumer log:\n{proc.tail()}",
        )
        # More input afterwards: once the other partitions have committed it to their end, the
        # consumer has committed since everything but the victim on partition 0 was done.
        produce_events(kafka_bootstrap, topic, later)
        ends = end_offsets(kafka_bootstrap, topic)

        def others_at_end_and_partition_held() -> bool:
            committed = committed_offsets(kafka_bootstrap, group, topic)
            assert committed[partition] <= victim_offset, (
                f"partition {partition} committed {committed[partition]}, past the failing "
                f"record at {victim_offset}"
            )
            others = all(committed[p] == end for p, end in ends.items() if p != partition)
            return others and committed[partition] == victim_offset

        wait_until(
            others_at_end_and_partition_held,
            120,
            f"partitions other than {partition} committed to the end and partition {partition} "
            f"up to the failing record at offset {victim_offset}",
            interval=0.25,
        )
        assert victim not in received_bodies(sandbox)
        refused = sandbox.calls(fulfillment_id=victim, status_code=404)
        assert len(refused) >= 3, "the victim's first call should have been retried"

        sandbox.clear_faults()
        wait_fully_committed(kafka_bootstrap, group, topic, [proc])
        assert proc.stop() == 0

    received = received_bodies(sandbox)
    for fulfillment, bodies in expected_status_bodies(first + later).items():
        assert received[fulfillment] == bodies, f"{fulfillment}: calls missing or out of order"

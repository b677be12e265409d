"""A Schema Registry that accepts connections and never answers, on a real broker: records
whose writer schema is cached keep flowing, the record waiting for an unseen schema keeps its
place in its shipment's order, and everything is sent once the registry answers again."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from consumer.kafka.schema_registry import SchemaReference
from consumer.model import TrackingEvent
from devkit.consumer_process import ConsumerProcess, wait_fully_committed
from devkit.encoding import encode_confluent
from devkit.expectations import expected_status_bodies
from devkit.generator import tracking_stream
from devkit.kafka_tools import produce, wait_until
from devkit.sandbox import SandboxControl
from tests.support.expected_calls import received_bodies
from tests.support.paths import REPO
from tests.support.schema_registry_server import running_registry

pytestmark = pytest.mark.broker

Env = Callable[..., dict[str, str]]
SCHEMA = (REPO / "avro" / "tracking_event.avsc").read_text()
KNOWN, UNSEEN = SchemaReference(schema_id=1), SchemaReference(schema_id=2)


def test_a_hanging_registry_holds_only_the_records_that_need_it(
    kafka_bootstrap: str, new_topic: Callable[..., str], sandbox: SandboxControl, consumer_env: Env
) -> None:
    topic = new_topic(partitions=2)
    warm = tracking_stream(shipments=5, scans_per_shipment=3, seed=101, prefix="warm")
    flowing = tracking_stream(shipments=20, scans_per_shipment=3, seed=102, prefix="flowing")
    waiting = tracking_stream(shipments=1, scans_per_shipment=4, seed=103, prefix="waiting")

    def framed(
        events: list[TrackingEvent], reference: SchemaReference = KNOWN
    ) -> list[tuple[bytes | None, bytes | None]]:
        return [(e.fulfillment_id.encode(), encode_confluent(e, reference)) for e in events]

    with running_registry() as (url, registry):
        registry.put(1, SCHEMA)
        registry.put(2, SCHEMA)
        env = consumer_env(topic, AVRO_FRAMING="confluent", SCHEMA_REGISTRY_URL=url)
        group = env["KAFKA_GROUP_ID"]
        with ConsumerProcess(env) as proc:
            produce(kafka_bootstrap, topic, framed(warm))
            wait_fully_committed(kafka_bootstrap, group, topic, [proc])

            registry.hold = threading.Event()  # from now on: connections accepted, no answer
            # The waiting shipment's first scan names the unseen schema, its later scans the
            # cached one: they must wait behind it, not overtake it.
            produce(kafka_bootstrap, topic, framed(waiting[:1], UNSEEN) + framed(waiting[1:]))
            produce(kafka_bootstrap, topic, framed(flowing))
            expected = expected_status_bodies(flowing)
            wait_until(
                lambda: all(received_bodies(sandbox).get(f) == b for f, b in expected.items()),
                120,
                f"the calls of shipments whose schema is cached; log:\n{proc.tail()}",
            )
            assert waiting[0].fulfillment_id not in received_bodies(sandbox)

            registry.hold.set()
            wait_fully_committed(kafka_bootstrap, group, topic, [proc], timeout=120)
            assert proc.stop() == 0, proc.tail()

    [(shipment, bodies)] = expected_status_bodies(waiting).items()
    assert received_bodies(sandbox)[shipment] == bodies, "the waiting shipment's order broke"

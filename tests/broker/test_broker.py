"""The local Kafka broker: real messages through it, its start/stop lifecycle, cluster choice."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer

from devkit import broker, kafka_tools

PARTITIONS = 3
PER_PARTITION = 4


def _consume(consumer: Any, count: int, timeout: float) -> list[Any]:
    deadline = time.monotonic() + timeout
    received: list[Any] = []
    while len(received) < count:
        assert time.monotonic() < deadline, f"got {len(received)} of {count} messages in {timeout}s"
        message = consumer.poll(0.5)
        if message is None:
            continue
        assert message.error() is None, message.error()
        received.append(message)
    return received


@pytest.mark.broker
def test_messages_come_back_from_the_partitions_they_were_sent_to(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=PARTITIONS)
    sent = [
        (partition, f"key-{partition}-{i}".encode(), f"value-{partition}-{i}".encode())
        for partition in range(PARTITIONS)
        for i in range(PER_PARTITION)
    ]
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for partition, key, value in sent:
        producer.produce(topic, key=key, value=value, partition=partition)
    assert producer.flush(30) == 0, "messages still undelivered after 30s"

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"{topic}-reader",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    try:
        received = _consume(consumer, count=len(sent), timeout=60)
    finally:
        consumer.close()

    by_partition = {
        p: [(m.key(), m.value()) for m in received if m.partition() == p] for p in range(PARTITIONS)
    }
    assert by_partition == {
        p: [(key, value) for partition, key, value in sent if partition == p]
        for p in range(PARTITIONS)
    }


@pytest.mark.broker
def test_local_kafka_retries_when_its_port_is_taken_and_cleans_up_on_stop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_pick = broker.pick_free_ports
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        picks: list[int] = []

        def pick_taken_port_first(count: int) -> list[int]:
            picks.append(count)
            return [taken, *real_pick(count - 1)] if len(picks) == 1 else real_pick(count)

        monkeypatch.setattr(broker, "pick_free_ports", pick_taken_port_first)
        kafka = broker.LocalKafka()
        kafka.start()
        try:
            bootstrap = kafka.bootstrap_servers
            work_dir = kafka.log_path.parent
            assert len(picks) == 2, "the taken port should have cost exactly one retry"
            assert bootstrap != f"127.0.0.1:{taken}"
            assert broker.broker_responds(bootstrap, timeout=10.0)
        finally:
            kafka.stop()

    assert not work_dir.exists()
    port = int(bootstrap.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5.0).close()


def test_kafka_cluster_uses_configured_bootstrap_without_starting_a_broker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse_to_start(**_: object) -> None:
        raise AssertionError("LocalKafka started although KAFKA_BOOTSTRAP_SERVERS is set")

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-a:9092,kafka-b:9092")
    monkeypatch.setattr(broker, "LocalKafka", refuse_to_start)
    with broker.kafka_cluster() as bootstrap:
        assert bootstrap == "kafka-a:9092,kafka-b:9092"


@pytest.mark.broker
def test_a_killed_broker_restarts_on_its_ports_with_its_data() -> None:
    """`kill()` is a crash (SIGKILL), `restart()` the node coming back: same address, same log
    dir, so acknowledged records are still there (the reliability suite's scenario b)."""
    with broker.LocalKafka() as kafka:
        bootstrap = kafka.bootstrap_servers
        broker.create_topic(bootstrap, "survives", 1)
        produced = kafka_tools.produce(bootstrap, "survives", [(b"k", b"v")] * 5)
        kafka.kill()
        assert not broker.broker_responds(bootstrap, timeout=1.0)
        assert kafka.restart() == bootstrap
        assert kafka_tools.end_offsets(bootstrap, "survives") == {0: produced}

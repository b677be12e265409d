"""The changelog on a real broker: a former owner's late write cannot roll a shipment back, and a
restore stops when its partition is taken away."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from consumer.errors import RestoreCancelled
from consumer.kafka.config import consumer_config
from consumer.kafka.producer import AsyncProducer
from consumer.model import ShipmentStatus
from consumer.rules import RulesConfig, ShipmentState
from consumer.state.changelog import OFFSET_HEADER, Changelog
from consumer.state.store import PartitionStore
from devkit.kafka_tools import produce

pytestmark = pytest.mark.broker

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _state(fulfillment: str, status: ShipmentStatus) -> ShipmentState:
    return ShipmentState(fulfillment, "store", "order", T0, last_status=status)


def _status(store: PartitionStore, fulfillment: str) -> ShipmentStatus | None:
    state = store.get(fulfillment)
    assert state is not None
    return state.last_status


def _changelog(bootstrap: str, topic: str) -> tuple[Changelog, AsyncProducer]:
    producer = AsyncProducer({"bootstrap.servers": bootstrap})
    config = consumer_config({"bootstrap.servers": bootstrap}, f"restore-{topic}")
    return Changelog(topic, producer, config), producer


def test_a_late_write_of_a_former_owner_cannot_roll_a_shipment_back(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    """The new owner wrote the state reflecting input offset 12; the old owner's write for
    offset 7 lands after it. Restore keeps offset 12's state and asks for it to be written
    again (so compaction, which keeps a key's last record, keeps it too); a tombstone of the
    new owner is not undone by an older write either."""
    topic = new_topic(partitions=1, config={"cleanup.policy": "compact"})
    changelog, producer = _changelog(kafka_bootstrap, topic)

    async def write() -> None:
        await changelog.write(0, "ful-a", _state("ful-a", ShipmentStatus.DELIVERED), offset=12)
        await changelog.write(0, "ful-a", _state("ful-a", ShipmentStatus.IN_TRANSIT), offset=7)
        await changelog.write(0, "ful-b", None, offset=20)
        await changelog.write(0, "ful-b", _state("ful-b", ShipmentStatus.IN_TRANSIT), offset=15)
        await changelog.write(0, "ful-c", _state("ful-c", ShipmentStatus.IN_TRANSIT), offset=3)

    asyncio.run(write())
    producer.close()
    restored = changelog.restore(0)
    store = PartitionStore(RulesConfig(), restored)

    assert _status(store, "ful-a") is ShipmentStatus.DELIVERED
    assert store.offset_of("ful-a") == 12
    assert "ful-b" not in store, "an older write resurrected an expired shipment"
    assert _status(store, "ful-c") is ShipmentStatus.IN_TRANSIT
    assert restored.rewrite == ["ful-a"]
    assert restored.rewrite_tombstones == {"ful-b": 20}, "the tombstone is written again too"


def test_an_unreadable_state_record_is_quarantined_not_fatal(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=1)
    changelog, producer = _changelog(kafka_bootstrap, topic)
    asyncio.run(changelog.write(0, "ful-ok", _state("ful-ok", ShipmentStatus.IN_TRANSIT), offset=1))
    producer.close()
    produce(kafka_bootstrap, topic, [(b"ful-bad", b"\x01\xff\xff\xff"), (b"ful-bad2", b"\x09")])

    restored = changelog.restore(0)

    assert set(PartitionStore(RulesConfig(), restored)) == {"ful-ok"}
    assert restored.quarantined == 2


def test_a_restore_stops_once_its_partition_is_revoked(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=1)
    state = _state("x", ShipmentStatus.IN_TRANSIT)
    changelog, producer = _changelog(kafka_bootstrap, topic)

    async def write_many() -> None:
        await asyncio.gather(
            *(changelog.write(0, f"ful-{n}", state, offset=n) for n in range(5_000))
        )

    asyncio.run(write_many())
    producer.close()
    asked = 0

    def revoked_after_the_first_batch() -> bool:
        nonlocal asked
        asked += 1
        return asked > 1

    with pytest.raises(RestoreCancelled):
        changelog.restore(0, cancelled=revoked_after_the_first_batch)
    assert OFFSET_HEADER == "state.input.offset"

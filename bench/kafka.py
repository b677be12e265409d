"""The harness's Kafka side: a cheap "is everything committed?" probe, a paced producer whose
record timestamps are the produce time, and removing what a run created.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Sequence

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from devkit.broker import delete_topics

Record = tuple[bytes, bytes]


class CommitWatch:
    """Compares a group's committed offsets with a topic's end offsets.

    One probe consumer for the whole run (never joining the group), because a new client per
    poll would cost the two shared cores more than the question is worth.
    """

    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        self._consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
        )
        metadata = self._consumer.list_topics(topic, timeout=10).topics[topic]
        self._partitions = [TopicPartition(topic, p) for p in sorted(metadata.partitions)]
        self.ends: dict[int, int] = {}
        self.refresh_ends()

    def refresh_ends(self) -> None:
        """Read the end offsets now (after a produce)."""
        self.ends = {
            tp.partition: self._consumer.get_watermark_offsets(tp, timeout=10)[1]
            for tp in self._partitions
        }

    def caught_up(self) -> bool:
        """True when every non-empty partition is committed to its end."""
        try:
            committed = self._consumer.committed(self._partitions, timeout=10)
        except KafkaException:
            return False  # coordinator loading or moving: ask again on the next poll
        return all(
            tp.offset == self.ends[tp.partition] or self.ends[tp.partition] == 0 for tp in committed
        )

    def close(self) -> None:
        self._consumer.close()


def produce_paced(
    bootstrap: str, topic: str, records: Sequence[Record], rate: float
) -> list[float]:
    """Produce ``records`` evenly spaced at ``rate`` per second; each record's Kafka timestamp is
    the moment it was produced. Returns those moments (``time.time()`` seconds), in order."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    producer.list_topics(topic, timeout=30)  # leaders known before the clock starts
    sent: list[float] = []
    start = time.monotonic()
    for index, (key, value) in enumerate(records):
        time.sleep(max(0.0, start + index / rate - time.monotonic()))
        now = time.time()
        producer.produce(topic, value, key=key, timestamp=int(now * 1000))
        producer.poll(0)
        sent.append(now)
    if producer.flush(30):
        raise RuntimeError(f"{topic}: live records not acknowledged within 30 s")
    return sent


def unique_prefix() -> str:
    """A name prefix for one benchmark run's topics and groups."""
    return f"bench-{uuid.uuid4().hex[:8]}"


def remove_run_leftovers(bootstrap: str, prefix: str) -> None:
    """Delete every topic (the contenders' dead-letter and state topics too) and consumer group
    whose name starts with ``prefix``, so a shared cluster is left as found."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})
    topics = [name for name in admin.list_topics(timeout=10).topics if name.startswith(prefix)]
    delete_topics(bootstrap, topics)
    groups = [g.group_id for g in admin.list_consumer_groups().result(timeout=10).valid]
    ours = [group for group in groups if group.startswith(prefix)]
    for future in admin.delete_consumer_groups(ours).values() if ours else ():
        # A group still emptying after its members left cannot be deleted; the broker expires it.
        with contextlib.suppress(KafkaException):
            future.result(timeout=10)

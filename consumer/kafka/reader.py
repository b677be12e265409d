"""Reading one partition from its beginning to its end: the changelog restore's Kafka side.

Contract: ``read_to_end`` opens its own librdkafka consumer (``restore_config``: it assigns, it
never joins the group, it commits nothing), hands every readable keyed record to ``apply`` in log
order, and returns once the position reaches the high watermark it saw when it started (records
written later belong to the new owner's own writes). It blocks: run it off the loop. It raises
``RestoreCancelled`` soon after ``cancelled()`` turns true (checked before every batch).
What the records *mean* is the caller's business (``consumer.state.changelog``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from consumer.errors import RestoreCancelled

log = logging.getLogger(__name__)

RESTORE_BATCH = 1000
WATERMARK_TIMEOUT_SECONDS = 30.0


def read_to_end(
    config: Mapping[str, Any],
    topic: str,
    partition: int,
    apply: Callable[[str, Message], None],
    cancelled: Callable[[], bool],
) -> bool:
    """Apply each keyed record of ``topic[partition]`` up to its current end; False when the
    partition held nothing to read (``apply`` never called)."""
    consumer = Consumer(dict(config))
    try:
        tp = TopicPartition(topic, partition)
        low, high = consumer.get_watermark_offsets(tp, timeout=WATERMARK_TIMEOUT_SECONDS)
        if high <= low:
            return False
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        _read_until(consumer, high, apply, cancelled)
        return True
    finally:
        consumer.close()


def _read_until(
    consumer: Consumer,
    high: int,
    apply: Callable[[str, Message], None],
    cancelled: Callable[[], bool],
) -> None:
    """Apply records until the position reaches ``high`` (compaction may leave gaps)."""
    assigned = consumer.assignment()
    while consumer.position(assigned)[0].offset < high:
        if cancelled():
            raise RestoreCancelled()
        for message in consumer.consume(RESTORE_BATCH, 1.0):
            if message.error() is not None:
                log.warning("changelog read error: %s", message.error())
                continue
            key = message.key()
            if key is not None:
                apply(key.decode("utf-8", "replace"), message)

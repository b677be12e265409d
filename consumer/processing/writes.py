"""Kafka writes retried until acknowledged: the one retry loop for dead letters and state.

Contract: ``until_written(work, write)`` awaits ``write()`` until it succeeds (True) or the
partition is revoked after a failed attempt (False: the write is given up, and with it the
record's done-ness). Only ``ProduceError`` is retried, with ``RetryPolicy.backoff``; anything
else is raised to the caller, whose containment dead-letters the record. While a refusal that
retrying cannot fix holds a write, ``writes_held`` (and ``tracking_kafka_writes_held``) count it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from consumer.delivery.retry import RetryPolicy, sleep_unless
from consumer.errors import ProduceError
from consumer.kafka.offsets import PartitionWork
from consumer.ops import metrics

log = logging.getLogger(__name__)

Write = Callable[[], Coroutine[Any, Any, None]]


class KafkaWrites:
    def __init__(self, retry: RetryPolicy) -> None:
        self._retry = retry
        self.writes_held = 0
        """Kafka writes held by a refusal retrying cannot fix (``/readyz`` reports them)."""

    async def until_written(self, work: PartitionWork, write: Write) -> bool:
        """Retry a Kafka write the broker did not acknowledge (librdkafka already retried for
        ``message.timeout.ms``) until it succeeds, or the partition is given up (False).

        A refusal that retrying cannot fix by itself (no such topic, not authorised) holds the
        partition visibly: an error log per attempt, ``tracking_kafka_writes_held`` (alerted
        on) and ``/readyz`` false, until an operator fixes it or the partition moves away."""
        attempt = 0
        held: str | None = None
        try:
            while True:  # one attempt even once revoked: what it records is done (e.g. a 2xx)
                try:
                    await write()
                    return True
                except ProduceError as exc:
                    if work.revoked:
                        return False
                    if exc.permanent and held is None:
                        held = exc.topic
                        self.writes_held += 1
                        metrics.KAFKA_WRITES_HELD.labels(topic=held).inc()
                    delay = self._retry.backoff(attempt)
                    log.error(
                        "Kafka write failed, retrying in %.1fs: %s",
                        delay,
                        exc,
                        extra={"partition": work.partition, "held": exc.permanent},
                    )
                    attempt += 1
                    await sleep_unless(delay, lambda: work.revoked)
        finally:
            if held is not None:
                self.writes_held -= 1
                metrics.KAFKA_WRITES_HELD.labels(topic=held).dec()

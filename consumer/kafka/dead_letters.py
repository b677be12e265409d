"""The dead-letter topic: where records and calls that no retry can fix are kept for people.

Every dead letter carries headers naming the error and the source topic, partition and offset, so
an operator can find the input and replay it once the cause is fixed. The API secret is never
part of one: a rejected call is stored as its path, body and Redo's answer, not as the request.

A dead letter the broker refuses as too large is written again with its value cut to
``TRUNCATED_VALUE_BYTES`` (and the source's own headers left out), then, if even that is
refused, with no value, then with no key; the ``dlq.truncated`` header gives the original
value's size.
The full record stays in the input topic at the offset the headers name.
"""

from __future__ import annotations

import json
from typing import Protocol

from consumer.errors import ProduceError, RedoError
from consumer.kafka.producer import AsyncProducer
from consumer.kafka.records import RawRecord
from consumer.model import RedoCall
from consumer.ops import metrics
from consumer.redo.payload import request_body, request_path

_MAX_ERROR_HEADER = 1000
TRUNCATED_VALUE_BYTES = 4096
_DECODE_REASONS = frozenset({"decode", "missing_key"})


class Origin(Protocol):
    """Where a dead letter came from: an input record, or a shipment's timer (offset -1)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...


class DeadLetters:
    def __init__(self, producer: AsyncProducer, topic: str) -> None:
        self._producer = producer
        self.topic = topic

    async def record(self, record: RawRecord, reason: str, error: str) -> None:
        """Keep the original bytes and headers, plus where they came from and why they failed."""
        await self._write(record, reason, error, record.value, record.headers)
        if reason in _DECODE_REASONS:
            metrics.DECODE_ERRORS.inc()

    async def failed_timer(self, origin: Origin, reason: str, error: str) -> None:
        """A shipment's timers could not run: keep which shipment and why."""
        key = (origin.key or b"").decode("utf-8", "replace")
        value = json.dumps({"fulfillmentId": key, "error": error}).encode()
        await self._write(origin, reason, error, value, (("content-type", b"application/json"),))

    async def rejected_call(self, origin: Origin, call: RedoCall, exc: RedoError) -> None:
        """Keep the call Redo refused and Redo's answer, keyed like the input."""
        reason = "redo_404" if exc.status_code == 404 else f"redo_{exc.status_code or 'error'}"
        document = {
            "request": {"path": request_path(call), "body": request_body(call)},
            "response": {"status": exc.status_code, "body": exc.body},
        }
        value = json.dumps(document).encode()
        headers = (("content-type", b"application/json"),)
        await self._write(origin, reason, str(exc), value, headers)

    async def _write(
        self,
        origin: Origin,
        reason: str,
        error: str,
        value: bytes | None,
        headers: tuple[tuple[str, bytes], ...],
    ) -> None:
        provenance = (
            ("dlq.reason", reason.encode()),
            ("dlq.error", error[:_MAX_ERROR_HEADER].encode()),
            ("dlq.source.topic", origin.topic.encode()),
            ("dlq.source.partition", str(origin.partition).encode()),
            ("dlq.source.offset", str(origin.offset).encode()),
        )
        cut = (("dlq.truncated", str(len(value or b"")).encode()), *provenance)
        attempts = (
            (origin.key, value, (*headers, *provenance)),
            (origin.key, value[:TRUNCATED_VALUE_BYTES] if value else value, cut),
            (origin.key, None, cut),
            (None, None, cut),  # a key too large for the topic (its source says where it was)
        )
        for attempt, (key, payload, all_headers) in enumerate(attempts, start=1):
            try:
                await self._producer.produce(self.topic, payload, key=key, headers=all_headers)
                break
            except ProduceError as exc:
                if not exc.too_large or attempt == len(attempts):
                    raise
        metrics.DEAD_LETTERS.labels(reason=reason).inc()

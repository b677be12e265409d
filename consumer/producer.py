"""An asyncio face on confluent-kafka's Producer, for dead letters and the state changelog.

librdkafka reports deliveries through callbacks served by ``poll()``; a small thread polls, and
each callback resolves the awaiting coroutine's future on its event loop. A record that caused a
dead letter (or a state update) is done only once the broker acknowledged that write.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from consumer.errors import TrackingConsumerError


class ProduceError(TrackingConsumerError):
    """The broker did not acknowledge a write (after librdkafka's own retries)."""


class AsyncProducer:
    def __init__(self, config: Mapping[str, str]) -> None:
        self._producer = Producer(
            {"enable.idempotence": "true", "acks": "all", "linger.ms": "5", **config}
        )
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="producer-poll", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    async def produce(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        partition: int | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        """Write one record and wait for the broker's acknowledgement."""
        loop = asyncio.get_running_loop()
        acked: asyncio.Future[None] = loop.create_future()

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            loop.call_soon_threadsafe(_settle, acked, err)

        kwargs: dict[str, Any] = {"key": key, "headers": list(headers), "on_delivery": on_delivery}
        if partition is not None:
            kwargs["partition"] = partition
        while True:
            try:
                self._producer.produce(topic, value, **kwargs)
                break
            except BufferError:
                await asyncio.sleep(0.05)  # librdkafka's queue is full: let the poller drain it
            except KafkaException as exc:
                raise ProduceError(f"cannot produce to {topic}: {exc}") from exc
        await acked

    def close(self, timeout: float = 10.0) -> None:
        """Flush what is queued, then stop the poll thread."""
        self._producer.flush(timeout)
        self._stop.set()
        self._poller.join()


def _settle(future: asyncio.Future[None], err: KafkaError | None) -> None:
    if future.done():
        return
    if err is None:
        future.set_result(None)
    else:
        future.set_exception(ProduceError(f"write not acknowledged: {err.str()}"))

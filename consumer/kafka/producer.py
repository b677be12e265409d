"""An asyncio face on confluent-kafka's Producer, for dead letters and the state changelog.

librdkafka reports deliveries through callbacks served by ``poll()``. Those are polled on the
event loop itself, every ``POLL_INTERVAL_SECONDS`` while any write is unacknowledged, so each
callback resolves its awaiting coroutine's future directly. (A polling thread would take the GIL
once per acknowledged record, and every processed record writes its state: measured, that
contention cost the loop more than the polls do.) A record that caused a dead letter (or a state
update) is done only once the broker acknowledged that write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from consumer.errors import ProduceError
from consumer.kafka.config import producer_config

POLL_INTERVAL_SECONDS = 0.002
_FULL_QUEUE_WAIT_SECONDS = 0.05


# Refusals that no retry fixes by itself: the topic is missing or we may not write to it.
_PERMANENT = frozenset(
    {
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError._UNKNOWN_PARTITION,
    }
)
_TOO_LARGE = frozenset({KafkaError.MSG_SIZE_TOO_LARGE})  # librdkafka and the broker alike


def produce_error(message: str, *, topic: str, code: int | None) -> ProduceError:
    """A ``ProduceError`` with its ``permanent``/``too_large`` flags read from the error code."""
    too_large = code in _TOO_LARGE
    return ProduceError(
        message, topic=topic, code=code, permanent=code in _PERMANENT, too_large=too_large
    )


class AsyncProducer:
    def __init__(self, config: Mapping[str, Any]) -> None:
        """``config``: the common settings (``consumer.kafka.config.common_config``)."""
        self._producer = Producer(producer_config(config))
        self._unacked = 0
        self._poller: asyncio.Task[None] | None = None

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
        acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            self._unacked -= 1
            _settle(acked, err, topic)

        kwargs: dict[str, Any] = {"key": key, "headers": list(headers), "on_delivery": on_delivery}
        if partition is not None:
            kwargs["partition"] = partition
        while True:
            try:
                self._producer.produce(topic, value, **kwargs)
                break
            except BufferError:
                self._keep_polling()  # librdkafka's queue is full: the poller drains it
                await asyncio.sleep(_FULL_QUEUE_WAIT_SECONDS)
            except KafkaException as exc:
                error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
                raise produce_error(
                    f"cannot produce to {topic}: {exc}",
                    topic=topic,
                    code=None if error is None else error.code(),
                ) from exc
        self._unacked += 1
        self._keep_polling()
        await acked

    def _keep_polling(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        """Serve delivery callbacks until every write is acknowledged; the next write restarts
        it, so an idle producer costs no wake-ups."""
        while True:
            self._producer.poll(0)
            if self._unacked <= 0:
                return
            await asyncio.sleep(POLL_INTERVAL_SECONDS)

    def close(self, timeout: float = 10.0) -> None:
        """Flush what is queued (its callbacks run here)."""
        if self._poller is not None:
            self._poller.cancel()
        self._producer.flush(timeout)


def _settle(future: asyncio.Future[None], err: KafkaError | None, topic: str) -> None:
    if future.done():
        return
    if err is None:
        future.set_result(None)
    else:
        future.set_exception(
            produce_error(
                f"write to {topic} not acknowledged: {err.str()}", topic=topic, code=err.code()
            )
        )

"""Contender (a): the loop most people write first. Poll one record, make its call, commit it
synchronously, repeat. Correct (nothing is committed before its call succeeded) and as slow as
one round trip plus one commit per record.

Run as ``python -m bench.naive --bootstrap B --topic T --group G --url U --secret-file F``;
SIGTERM stops it after the record in hand.
"""

from __future__ import annotations

import signal
from types import FrameType

import httpx
from confluent_kafka import Consumer

from bench.calls import parse_kafka_contender, redo_request
from consumer.serde.events import RawDecoder

_running = True


def _stop(signum: int, frame: FrameType | None) -> None:
    global _running
    _running = False


def main(argv: list[str] | None = None) -> None:
    args = parse_kafka_contender("python -m bench.naive", argv)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([args.topic])
    decoder = RawDecoder()
    try:
        with httpx.Client(base_url=args.target.url, headers=args.target.headers) as http:
            while _running:
                message = consumer.poll(0.5)
                if message is None or message.error() is not None:
                    continue
                request = redo_request(decoder.decode(message.value(), ()))
                if request is not None:
                    path, body = request
                    http.post(path, json=body).raise_for_status()
                consumer.commit(message=message, asynchronous=False)
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
